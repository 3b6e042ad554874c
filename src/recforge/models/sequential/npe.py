"""NPE: neural personalized embedding for collaborative filtering (Nguyen et al., IJCAI 2018), RecBole's
formulation.

A history ``s`` is represented by ``h = dropout(relu(U[u])) + dropout(relu(sum_{j < L} E[s_j]))``, the sum running
over all ``L`` positions of the padded history (``E`` has no padding row in RecBole, so item 0's trainable vector
is added once per padding position). Item ``i`` scores ``h . relu(E[i])``. ``embedding_seq_item`` is allocated and
initialised as in RecBole but not used.
"""

from __future__ import annotations

import torch
from torch import nn

from recforge.config.types import Float, Int, Key
from recforge.models.sequential.base import SequentialRecommender, loss_type_key
from recforge.registry import register_model


def xavier_normal_embeddings(module: nn.Module) -> None:
    """RecBole's NPE ``_init_weights``: xavier-normal embedding weights."""
    if isinstance(module, nn.Embedding):
        nn.init.xavier_normal_(module.weight.data)


@register_model
class NPE(SequentialRecommender):
    """The user's personal preference plus the summed embeddings of the items in the history, both through ReLU
    and dropout; items are scored by a dot product with their ReLU-ed embeddings."""

    hyper_parameters = (
        Key("embedding_size", Int(minimum=1), 64, "Dimension of user and item embeddings."),
        loss_type_key(),
        Key("dropout_prob", Float(minimum=0.0, maximum=1.0), 0.3, "Dropout on the user and history vectors."),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.embedding_size: int = config["embedding_size"]
        self.dropout_prob: float = config["dropout_prob"]
        self.user_embedding = nn.Embedding(self.n_users, self.embedding_size)
        self.item_embedding = nn.Embedding(self.n_items, self.embedding_size)
        self.embedding_seq_item = nn.Embedding(self.n_items, self.embedding_size, padding_idx=0)  # unused (RecBole)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(self.dropout_prob)
        self.apply(xavier_normal_embeddings)

    def forward(self, seq_item: torch.Tensor, user: torch.Tensor) -> torch.Tensor:
        """[B, L], [B] -> the history's representation [B, d]."""
        user_embedding = self.dropout(self.relu(self.user_embedding(user)))
        seq_item_embedding = self.dropout(self.relu(self.item_embedding(seq_item).sum(dim=1)))
        return user_embedding + seq_item_embedding

    def sequence_output(self, interaction) -> torch.Tensor:
        return self.forward(interaction[self.ITEM_SEQ], interaction[self.USER_ID])

    def item_weight(self) -> torch.Tensor:
        """[n_items, d]: ``relu(E)``, the vectors items are scored with."""
        return self.relu(self.item_embedding.weight)
