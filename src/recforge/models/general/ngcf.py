"""NGCF: neural graph collaborative filtering (Wang et al., SIGIR 2019; RecBole's NGCF)."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from recforge.config.types import Float, Int, Key, ListOf
from recforge.models.base import InputType
from recforge.models.graph import GraphRecommender
from recforge.models.init import xavier_normal_initialization
from recforge.models.losses import bpr_loss, embedding_loss
from recforge.models.sparse import propagate, transpose_order, with_values
from recforge.registry import register_model


class BiInteraction(nn.Module):
    """One NGCF layer: ``W1 (L E + E) + W2 (L E ⊙ E)`` (both with biases; RecBole's BiGNNLayer)."""

    def __init__(self, in_size: int, out_size: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_size, out_size)
        self.interaction = nn.Linear(in_size, out_size)

    def forward(self, adjacency: torch.Tensor, transposed: torch.Tensor | None, features: torch.Tensor):
        neighbours = propagate(adjacency, features, transposed).to(features.dtype)
        return self.linear(features + neighbours) + self.interaction(neighbours * features)


@register_model
class NGCF(GraphRecommender):
    """E^(l+1) = normalize(dropout(LeakyReLU_0.2(W1 (L E^(l) + E^(l)) + W2 (L E^(l) ⊙ E^(l))))), the final
    embedding the concatenation [E^(0), ..., E^(L)] (d + sum(hidden_size_list) wide), score the inner product.

    Node dropout (``node_dropout``) drops entries of the normalised adjacency at random in training and rescales
    the rest by 1 / (1 - p); message dropout applies to each layer's output in training only. Loss: BPR + ``reg_weight``
    x RecBole's EmbLoss of the batch's final embeddings. Xavier-normal initialisation.
    """

    input_type = InputType.PAIRWISE
    hyper_parameters = (
        Key("embedding_size", Int(minimum=1), 64, "Dimension of the layer-0 embeddings."),
        Key("hidden_size_list", ListOf(Int(minimum=1), min_length=1), [64, 64, 64], "Output size of each layer."),
        Key("node_dropout", Float(minimum=0.0, maximum=0.99), 0.0, "Share of adjacency entries dropped per step."),
        Key("message_dropout", Float(minimum=0.0, maximum=0.99), 0.1, "Dropout on each layer's output."),
        Key("reg_weight", Float(minimum=0.0), 1e-5, "Weight of the L2 norm of the batch's final embeddings."),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        sizes = [config["embedding_size"], *config["hidden_size_list"]]
        self.node_dropout: float = config["node_dropout"]
        self.reg_weight: float = config["reg_weight"]
        self.user_embedding = nn.Embedding(self.n_users, sizes[0])
        self.item_embedding = nn.Embedding(self.n_items, sizes[0])
        self.layers = nn.ModuleList(BiInteraction(a, b) for a, b in itertools.pairwise(sizes))
        self.message_dropout = nn.Dropout(config["message_dropout"])
        self.register_buffer("transposition", transpose_order(self.adjacency), persistent=False)
        self.apply(xavier_normal_initialization)

    def _graph(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The adjacency of this step and its transpose (None: symmetric)."""
        if not self.training or self.node_dropout == 0:
            return self.adjacency, None
        values = self.adjacency.values()
        keep = torch.rand(values.shape, device=values.device) >= self.node_dropout
        dropped = values * keep / (1 - self.node_dropout)
        return with_values(self.adjacency, dropped), with_values(self.adjacency, dropped[self.transposition])

    def node_embeddings(self) -> torch.Tensor:
        """[n_users + n_items, d + sum(hidden_size_list)]: every layer's embeddings side by side."""
        adjacency, transposed = self._graph()
        layer = torch.cat([self.user_embedding.weight, self.item_embedding.weight])
        outputs = [layer]
        for gnn in self.layers:
            layer = F.leaky_relu(gnn(adjacency, transposed, layer), negative_slope=0.2)
            layer = F.normalize(self.message_dropout(layer), p=2, dim=1)
            outputs.append(layer)
        return torch.cat(outputs, dim=1)

    def propagated(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.split(self.node_embeddings().float())

    def calculate_loss(self, interaction) -> torch.Tensor:
        users, items = self.propagated()
        user_e = users[interaction[self.USER_ID]]
        pos_e, neg_e = items[interaction[self.ITEM_ID]], items[interaction[self.NEG_ITEM_ID]]
        pos_scores = (user_e * pos_e).sum(-1)
        neg_scores = torch.einsum("bd,bnd->bn", user_e, neg_e) if neg_e.dim() == 3 else (user_e * neg_e).sum(-1)
        return bpr_loss(pos_scores, neg_scores) + self.reg_weight * embedding_loss(user_e, pos_e, neg_e)
