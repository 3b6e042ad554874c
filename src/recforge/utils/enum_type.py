"""Enumerations shared by every layer (RecBole's ``recbole.utils.enum_type``)."""

from __future__ import annotations

from enum import Enum


class InputType(Enum):
    """What a training batch holds: labelled rows (POINTWISE) or (positive, negative) pairs (PAIRWISE)."""

    POINTWISE = 1
    PAIRWISE = 2
    LISTWISE = 3


class ModelType(Enum):
    """The family of a model; ``get_trainer`` falls back on it to pick a trainer."""

    GENERAL = 1
    SEQUENTIAL = 2
    CONTEXT = 3
    KNOWLEDGE = 4
    TRADITIONAL = 5
    DECISIONTREE = 6


class KGDataLoaderState(Enum):
    """What a knowledge-aware training loader yields (RecBole's ``set_mode``): interactions (RS), triples with
    sampled negative tails (KG), or interaction batches each merged with a triple batch (RSKG)."""

    RSKG = 1
    RS = 2
    KG = 3
