"""SGL: self-supervised graph learning with edge / node dropout views (Wu et al., SIGIR 2021; RecBole's SGL)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from recforge.config.types import Float, Int, Key, Str
from recforge.models.general.lightgcn import LightGCN
from recforge.models.graph import interactions, normalized_adjacency
from recforge.models.losses import batch_embedding_loss, distinct, info_nce_sum
from recforge.models.sparse import propagate
from recforge.registry import register_model


@register_model
class SGL(LightGCN):
    """LightGCN with a contrastive task between two randomly perturbed views of the graph.

    Every epoch draws two views (``type``): ED drops ``drop_ratio`` of the training interactions, ND drops that
    share of the user and of the item ids with their edges, RW draws an ED graph per layer. Loss, as RecBole's:
    sum of -log sigmoid(pos - neg) over the batch + ``reg_weight`` x EmbLoss of the batch's layer-0 embeddings +
    ``ssl_weight`` x (InfoNCE of the batch users' view-1 against view-2 embeddings over all users + the same for
    the positive items), temperature ``ssl_tau``. Prediction uses the whole graph. The views are drawn from
    torch's generator (RecBole uses numpy's), so a resumed run draws what an uninterrupted one would.
    """

    # RecBole's SGL sums its BPR and InfoNCE terms over the batch (see Recommender.loss_reductions).
    loss_reductions: ClassVar[dict[str, str | tuple[str, ...]]] = {"calculate_loss": "sum"}
    hyper_parameters = (
        Key("type", Str(choices=("ED", "ND", "RW")), "ED", "Augmentation: edge dropout, node dropout, random walk."),
        Key("n_layers", Int(minimum=1), 3, "Propagation layers."),
        Key("ssl_tau", Float(minimum=0.0, exclusive_minimum=True), 0.5, "Temperature of the contrastive loss."),
        Key("reg_weight", Float(minimum=0.0), 1e-5, "Weight of the L2 norm of the batch's layer-0 embeddings."),
        Key("ssl_weight", Float(minimum=0.0), 0.05, "Weight of the contrastive loss."),
        Key("drop_ratio", Float(minimum=0.0, maximum=0.99), 0.1, "Share of edges (or nodes) a view drops."),
        Key("embedding_size", Int(minimum=1), 64, "Dimension of user and item embeddings."),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.require_pow = False  # RecBole's SGL does not read require_pow
        self.view_type: str = config["type"]
        self.ssl_tau: float = config["ssl_tau"]
        self.ssl_weight: float = config["ssl_weight"]
        self.drop_ratio: float = config["drop_ratio"]
        self.users, self.items = interactions(dataset)
        # The full graph weights repeated interactions, as RecBole's SGL does.
        self.adjacency = normalized_adjacency(self.users, self.items, self.n_users, self.n_items).to(self.device)
        self.views: list[list[torch.Tensor]] = []

    def _sample_graph(self) -> torch.Tensor:
        """One perturbed normalised adjacency."""
        users, items = self.users, self.items
        if self.view_type == "ND":
            dropped_users = torch.randperm(self.n_users)[: int(self.n_users * self.drop_ratio)]
            dropped_items = torch.randperm(self.n_items)[: int(self.n_items * self.drop_ratio)]
            keep = ~(np.isin(users, dropped_users.numpy()) | np.isin(items, dropped_items.numpy()))
        else:
            keep = torch.randperm(len(users))[: int(len(users) * (1 - self.drop_ratio))].numpy()
        return normalized_adjacency(users[keep], items[keep], self.n_users, self.n_items).to(self.device)

    def on_epoch_start(self, epoch: int) -> None:
        """Draw this epoch's two views (one graph per layer for RW, one graph for every layer otherwise)."""
        per_view = self.n_layers if self.view_type == "RW" else 1
        self.views = [[self._sample_graph() for _ in range(per_view)] for _ in range(2)]

    def view_embeddings(self, graphs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Final embeddings over a view: the mean of layers 0..L propagated over its graph(s)."""
        layers = [self.ego_embeddings()]
        for layer in range(self.n_layers):
            layers.append(propagate(graphs[layer % len(graphs)], layers[-1]))
        return self.split(self.layer_mean(layers))

    def calculate_loss(self, interaction) -> torch.Tensor:
        if not self.views:
            self.on_epoch_start(0)
        user, pos, neg = interaction[self.USER_ID], interaction[self.ITEM_ID], interaction[self.NEG_ITEM_ID]
        users, items = self.propagated()
        user_e = users[user]
        pos_scores = (user_e * items[pos]).sum(-1)
        neg_e = items[neg]
        if neg_e.dim() == 3:  # [B, N, d]: N negatives per positive
            margin = pos_scores.unsqueeze(-1) - torch.einsum("bd,bnd->bn", user_e, neg_e)
        else:
            margin = pos_scores - (user_e * neg_e).sum(-1)
        ranking = -F.logsigmoid(margin).sum()
        index, batch, n_neg = self.batch_nodes(interaction)
        regular = batch_embedding_loss(self.ego_embeddings(), index, [batch, batch, batch * n_neg])
        users_1, items_1 = self.view_embeddings(self.views[0])
        users_2, items_2 = self.view_embeddings(self.views[1])
        (user, user_count), (pos, pos_count) = distinct(user), distinct(pos)  # repeated anchors: weighted once
        contrast = sum(  # the second view's table normalised once: it gives the positives and the candidates
            info_nce_sum(
                F.normalize(view_1.index_select(0, ids), dim=1),
                unit_2.index_select(0, ids),
                unit_2,
                self.ssl_tau,
                count,
                normalized=True,
            )
            for view_1, unit_2, ids, count in (
                (users_1, F.normalize(users_2, dim=1), user, user_count),
                (items_1, F.normalize(items_2, dim=1), pos, pos_count),
            )
        )
        return ranking + self.reg_weight * regular + self.ssl_weight * contrast
