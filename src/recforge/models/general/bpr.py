"""BPR: matrix factorisation trained with the Bayesian personalised ranking loss (Rendle et al., UAI 2009)."""

from __future__ import annotations

import torch
from torch import nn

from recforge.config.types import Int, Key
from recforge.models.base import GeneralRecommender, InputType
from recforge.models.init import xavier_normal_initialization
from recforge.models.losses import bpr_loss
from recforge.registry import register_model


@register_model
class BPR(GeneralRecommender):
    """Score(u, i) = <e_u, e_i> with [n_users, d] and [n_items, d] embeddings (Xavier-normal initialised)."""

    input_type = InputType.PAIRWISE
    hyper_parameters = (Key("embedding_size", Int(minimum=1), 64, "Dimension d of user and item embeddings."),)

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        size = config["embedding_size"]
        self.user_embedding = nn.Embedding(self.n_users, size, sparse=self.sparse_embeddings)
        self.item_embedding = nn.Embedding(self.n_items, size, sparse=self.sparse_embeddings)
        self.apply(xavier_normal_initialization)

    def forward(self, user: torch.Tensor, item: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings of ``user`` [B] and ``item`` [B] or [B, N]."""
        return self.user_embedding(user), self.item_embedding(item)

    def calculate_loss(self, interaction) -> torch.Tensor:
        user_e, pos_e = self.forward(interaction[self.USER_ID], interaction[self.ITEM_ID])
        neg_e = self.item_embedding(interaction[self.NEG_ITEM_ID])
        pos_scores = (user_e * pos_e).sum(-1)
        if neg_e.dim() == 3:  # [B, N, d]: N negatives per positive
            neg_scores = torch.einsum("bd,bnd->bn", user_e, neg_e)
        else:
            neg_scores = (user_e * neg_e).sum(-1)
        return bpr_loss(pos_scores, neg_scores)

    def predict(self, interaction) -> torch.Tensor:
        user_e, item_e = self.forward(interaction[self.USER_ID], interaction[self.ITEM_ID])
        return (user_e * item_e).sum(-1)

    def full_sort_predict(self, interaction) -> torch.Tensor:
        return self.user_embedding(interaction[self.USER_ID]) @ self.item_embedding.weight.T
