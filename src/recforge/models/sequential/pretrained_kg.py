"""Pretrained knowledge-graph vectors of KSR and GRU4RecKG, read from the data set's ``preload_weight`` matrices
(``<dataset>.ent`` / ``<dataset>.rel`` files; ``recforge kg-embeddings`` writes them)."""

from __future__ import annotations

import logging

import numpy as np
import torch

from recforge.errors import ConfigError

logger = logging.getLogger("recforge")

# (file suffix, (id field, vector field)): the names RecBole's KSR / GRU4RecKG read
ENTITY_VECTORS = ("ent", ("ent_id", "ent_emb"))
RELATION_VECTORS = ("rel", ("rel_id", "rel_emb"))


def preloaded(dataset, vectors: tuple[str, tuple[str, str]], size: int, size_key: str) -> np.ndarray:
    """The id-indexed matrix [ids, size] (float64) of ``vectors`` (one of the constants above); a ConfigError names
    the file and the key when it is not loaded or its vectors do not have ``size`` values."""
    suffix, (id_field, vector_field) = vectors
    path = dataset.dataset_path / f"{dataset.dataset_name}.{suffix}"
    try:
        matrix = dataset.get_preload_weight(id_field)
    except KeyError:
        raise ConfigError(
            f"config key 'preload_weight' has no {id_field!r}: the model reads pretrained vectors from {path} "
            f"({id_field}:token {vector_field}:float_seq; `recforge kg-embeddings` writes them) through "
            f"additional_feat_suffix: [{suffix}] and preload_weight: {{{id_field}: {vector_field}}}"
        ) from None
    if matrix.ndim != 2 or matrix.shape[1] != size:
        found = matrix.shape[1] if matrix.ndim == 2 else 1
        raise ConfigError(
            f"{path}: the {vector_field} vectors have {found} values, but config key '{size_key}' is {size}; set "
            f"{size_key}: {found}, or write vectors of {size} values (recforge kg-embeddings --embedding-size {size})"
        )
    return matrix


def pretrained_entities(dataset, n_items: int, size: int, size_key: str) -> torch.Tensor:
    """Rows ``0 .. n_items - 1`` of the entity matrix, float32 [n_items, size]: item ``i``'s entity vector (the
    merged id space of a ``KGSeqDataset``); items without one keep zeros (a warning counts them)."""
    matrix = preloaded(dataset, ENTITY_VECTORS, size, size_key)[:n_items]
    missing = int((~matrix[1:].any(axis=1)).sum())
    if missing:
        logger.warning(
            "%d of the %d items have no entity vector in %s.%s (their rows are zeros)",
            missing,
            n_items - 1,
            dataset.dataset_name,
            ENTITY_VECTORS[0],
        )
    return torch.from_numpy(np.ascontiguousarray(matrix, dtype=np.float32))
