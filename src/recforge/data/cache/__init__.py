"""The cache of processed data: processed data sets (``datasets``) and the splits and histories computed from them
(``splits``), each stored as an entry of memory-mapped ``.npy`` files with a manifest (``entries``)."""
