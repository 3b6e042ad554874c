"""A small graph model for mixed-precision tests: one normalised propagation step plus a linear projection,
so that autocast really runs matmuls in bf16 / fp16 and the sparse product must stay in float32."""

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from recforge.models.base import GeneralRecommender, InputType
from recforge.models.init import xavier_normal_initialization
from recforge.models.losses import bpr_loss
from recforge.models.sparse import propagate


class TinyGraph(GeneralRecommender):
    input_type = InputType.PAIRWISE

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.embedding = nn.Embedding(self.n_users + self.n_items, 32)
        self.project = nn.Linear(32, 32)
        self.apply(xavier_normal_initialization)
        matrix = dataset.inter_matrix("coo")
        rows = np.concatenate([matrix.row, matrix.col + self.n_users])
        cols = np.concatenate([matrix.col + self.n_users, matrix.row])
        n = self.n_users + self.n_items
        adj = sp.coo_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, n)).tocsr()
        degree = np.asarray(adj.sum(axis=1)).ravel() + 1e-7
        norm = sp.diags(degree**-0.5) @ adj @ sp.diags(degree**-0.5)
        norm = norm.tocoo()
        self.register_buffer(
            "adjacency",
            torch.sparse_coo_tensor(
                np.vstack([norm.row, norm.col]), norm.data.astype(np.float32), (n, n), check_invariants=True
            ).coalesce(),
        )
        self.dtypes = set()

    def forward(self):
        base = self.embedding.weight
        propagated = (base + propagate(self.adjacency, base)) / 2
        out = self.project(propagated)
        self.dtypes.add(out.dtype)
        return out[: self.n_users], out[self.n_users :]

    def calculate_loss(self, batch):
        users, items = self.forward()
        u = users[batch["user_id"]]
        return bpr_loss((u * items[batch["item_id"]]).sum(-1), (u * items[batch["neg_item_id"]]).sum(-1))

    def full_sort_predict(self, batch):
        users, items = self.forward()
        return (users[batch["user_id"]] @ items.T).float()
