"""Graph collaborative filtering: the normalised user-item graph and the base class of the graph models (LightGCN,
NGCF, SGL, SimGCL, NCL).

The graph has one node per user id and per item id (users first, items shifted by ``n_users``) and an edge for
every distinct (user, item) pair of the training split. Its normalised adjacency is RecBole's
``D^-1/2 A D^-1/2`` (D: node degrees + 1e-7), built vectorised as a CSR tensor (no scipy private API). The matrix is
symmetric: ``recforge.models.sparse.propagate`` multiplies by it, the gradient through the same matrix.
"""

from __future__ import annotations

import numpy as np
import torch

from recforge.models.base import GeneralRecommender
from recforge.models.sparse import csr_from_coo
from recforge.models.tables import ScoreTables
from recforge.utils.arrays import stable_argsort, unique_sorted

DEGREE_EPSILON = 1e-7  # RecBole's: isolated nodes (the padding ids) get a finite normaliser


def interactions(dataset) -> tuple[np.ndarray, np.ndarray]:
    """The (user, item) ids of ``dataset``'s interactions, one pair per row (repeats included)."""
    return (
        np.asarray(dataset.inter_feat[dataset.uid_field], np.int64),
        np.asarray(dataset.inter_feat[dataset.iid_field], np.int64),
    )


def training_edges(dataset) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (user, item) pairs of ``dataset``'s interactions, as two int64 arrays sorted by pair."""
    users, items = interactions(dataset)
    keys = unique_sorted(users * dataset.item_num + items)
    return keys // dataset.item_num, keys % dataset.item_num


def normalized_adjacency(
    users: np.ndarray, items: np.ndarray, n_users: int, n_items: int, weights: np.ndarray | None = None
) -> torch.Tensor:
    """``D^-1/2 A D^-1/2`` of the bipartite graph with edges (users[k], items[k]) as a float32 CSR tensor of
    shape [n_users + n_items] x 2. ``weights`` (default 1) are the edges' values in A; a pair given several times
    gets the sum of its weights, and D sums each node's weights."""
    n = n_users + n_items
    weights = np.ones(len(users), dtype=np.float64) if weights is None else np.asarray(weights, dtype=np.float64)
    keys = np.asarray(users, np.int64) * n_items + np.asarray(items, np.int64)
    order = stable_argsort(keys)
    keys, weights = keys[order], weights[order]
    first = np.r_[True, keys[1:] != keys[:-1]] if len(keys) else np.zeros(0, dtype=bool)
    weights = np.add.reduceat(weights, np.flatnonzero(first)) if len(keys) else weights
    users, items = keys[first] // n_items, keys[first] % n_items
    rows = np.concatenate([users, items + n_users])
    cols = np.concatenate([items + n_users, users])
    values = np.concatenate([weights, weights])
    degree = np.bincount(rows, weights=values, minlength=n) + DEGREE_EPSILON
    scale = degree**-0.5
    return csr_from_coo(rows, cols, values * scale[rows] * scale[cols], (n, n))


class GraphRecommender(ScoreTables, GeneralRecommender):
    """A model over the normalised user-item graph of the training split.

    Subclasses implement ``propagated()`` -> (user embeddings [n_users, d], item embeddings [n_items, d]). The
    adjacency is a buffer that is not saved (it is rebuilt from the data); ``full_sort_predict`` and ``predict``
    propagate once per evaluation (``ScoreTables``).
    """

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        users, items = training_edges(dataset)
        self.register_buffer(
            "adjacency", normalized_adjacency(users, items, self.n_users, self.n_items), persistent=False
        )

    def propagated(self) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def split(self, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Node embeddings [n_users + n_items, d] as (users, items)."""
        return embeddings[: self.n_users], embeddings[self.n_users :]

    def compute_tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.propagated()
