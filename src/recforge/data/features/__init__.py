"""The features of a (user, item) pair for context-aware and tree models: which columns they are (``fields``) and
their sparse matrix for tree models (``matrix``)."""
