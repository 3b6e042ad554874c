"""Splitting a data set into training, validation and test parts (``rules``), each part's user histories
(``history``) and negative sampling against them (``sampler``)."""
