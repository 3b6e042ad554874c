"""ItemKNN: item-based collaborative filtering with cosine similarity (Aiolli, RecSys 2013; RecBole's ItemKNN)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from recforge.config.types import Float, Int, Key, Str
from recforge.models.base import GeneralRecommender, InputType, ModelType
from recforge.registry import register_model

if TYPE_CHECKING:
    import scipy.sparse as sp

BLOCK_CELLS = 1 << 24  # similarity cells computed at once (64 MB of float32)


def item_similarity(matrix: sp.csr_matrix, k: int, shrink: float) -> sp.csr_matrix:
    """The k-nearest-neighbour cosine similarity W [n_items, n_items] of the columns of ``matrix``.

    ``W[i, j] = <x_i, x_j> / (|x_i| |x_j| + shrink + 1e-6)`` for the k items ``i != j`` most similar to ``j``
    (column ``j`` keeps k entries; zeros are dropped). Ties at the k-th value are broken towards lower item
    ids, so the result does not depend on the sorting algorithm. Computed in float32 in column blocks.
    """
    import scipy.sparse as sp

    matrix = matrix.astype(np.float32)
    n = matrix.shape[1]
    k = min(k, n)
    norms = np.sqrt(np.asarray(matrix.power(2).sum(axis=0), dtype=np.float32).ravel())
    transposed = matrix.T.tocsr()
    matrix_csc = matrix.tocsc()
    block = max(1, BLOCK_CELLS // max(n, 1))
    rows, cols, vals = [], [], []
    for start in range(0, n, block):
        stop = min(start + block, n)
        sims = np.asarray((transposed @ matrix_csc[:, start:stop]).toarray(), dtype=np.float32)
        local = np.arange(stop - start)
        sims[start + local, local] = 0.0
        denominator = norms[:, None] * norms[None, start:stop] + np.float32(shrink) + np.float32(1e-6)
        sims = np.multiply(sims, 1 / denominator, dtype=np.float32)
        selected = _top_k_per_column(sims, k)
        r, c = np.nonzero(selected & (sims != 0))
        rows.append(r)
        cols.append(c + start)
        vals.append(sims[r, c])
    rows, cols, vals = (np.concatenate(x) if x else np.empty(0) for x in (rows, cols, vals))
    return sp.csr_matrix((vals.astype(np.float32), (rows, cols)), shape=(n, n))


def _top_k_per_column(values: np.ndarray, k: int) -> np.ndarray:
    """Mask of the k largest entries of each column; among equal values the lower row indices win."""
    if k >= values.shape[0]:
        return np.ones(values.shape, dtype=bool)
    kth = -np.partition(-values, k - 1, axis=0)[k - 1]
    greater = values > kth
    needed = k - greater.sum(axis=0)
    equal = values == kth
    return greater | (equal & (np.cumsum(equal, axis=0) <= needed))


@register_model
class ItemKNN(GeneralRecommender):
    """Neighbourhood collaborative filtering on the training matrix X [n_users, n_items].

    ``knn_method: item`` (default): W = item_similarity(X), score(u, j) = sum_i X[u, i] W[i, j].
    ``knn_method: user``: W[u, v] = similarity of users u and v for the k users v most similar to u,
    score(u, j) = sum_v W[u, v] X[v, j]. Fitted in one pass (no optimizer); X and W are kept as CSR buffers
    so that checkpoints hold the fitted model.
    """

    input_type = InputType.POINTWISE
    type = ModelType.TRADITIONAL
    trainable = False
    hyper_parameters = (
        Key("k", Int(minimum=1), 100, "Neighbours kept per item."),
        Key("shrink", Float(minimum=0.0), 0.0, "Added to the cosine denominator; damps pairs with little support."),
        Key("knn_method", Str(choices=("item", "user")), "item", "Neighbourhoods of items or of users."),
    )
    resizable_buffers = ("x_indptr", "x_indices", "x_data", "w_indptr", "w_indices", "w_data")

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.k = config["k"]
        self.shrink = config["shrink"]
        self.method = config["knn_method"]
        for name in self.resizable_buffers:
            self.register_buffer(name, torch.zeros(0, dtype=torch.float32 if name.endswith("data") else torch.int64))
        self._cache: tuple[sp.csr_matrix, sp.csr_matrix] | None = None

    def fit_statistics(self, train_dataset) -> None:
        history = train_dataset.inter_matrix(form="csr").astype(np.float32)
        if self.method == "item":
            similarity = item_similarity(history, self.k, self.shrink)
        else:  # column u of the similarity of X's rows holds u's neighbours; store it row-wise
            similarity = item_similarity(history.T.tocsr(), self.k, self.shrink).T.tocsr()
        for prefix, matrix in (("x", history), ("w", similarity)):
            setattr(self, f"{prefix}_indptr", torch.from_numpy(matrix.indptr.astype(np.int64)))
            setattr(self, f"{prefix}_indices", torch.from_numpy(matrix.indices.astype(np.int64)))
            setattr(self, f"{prefix}_data", torch.from_numpy(matrix.data.astype(np.float32)))
        self._cache = None

    def _matrices(self) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        import scipy.sparse as sp

        if self._cache is None or self._cache[0].nnz != len(self.x_data):

            def build(prefix: str, shape: tuple[int, int]) -> sp.csr_matrix:
                parts = (getattr(self, f"{prefix}_{p}").cpu().numpy() for p in ("data", "indices", "indptr"))
                return sp.csr_matrix(tuple(parts), shape=shape)

            n = self.n_items if self.method == "item" else self.n_users
            self._cache = (build("x", (self.n_users, self.n_items)), build("w", (n, n)))
        return self._cache

    def _score_rows(self, users: np.ndarray) -> sp.csr_matrix:
        history, similarity = self._matrices()
        if self.method == "item":
            return history[users] @ similarity
        return similarity[users] @ history

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self._cache = None

    def full_sort_predict(self, interaction) -> torch.Tensor:
        users = interaction[self.USER_ID].cpu().numpy()
        scores = self._score_rows(users).toarray()
        return torch.from_numpy(scores).to(interaction[self.USER_ID].device)

    def predict(self, interaction) -> torch.Tensor:
        users = interaction[self.USER_ID].cpu().numpy()
        items = np.array(interaction[self.ITEM_ID].cpu().numpy(), dtype=np.int64)
        unique, inverse = np.unique(users, return_inverse=True)
        rows = self._score_rows(unique).tocsr()
        scores = np.asarray(rows[np.array(inverse, dtype=np.int64), items]).ravel()
        return torch.from_numpy(scores.astype(np.float32)).to(interaction[self.USER_ID].device)
