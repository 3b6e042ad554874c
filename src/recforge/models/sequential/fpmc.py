"""FPMC: factorizing personalized Markov chains for next-basket recommendation (Rendle et al., WWW 2010), RecBole's
formulation (baskets of one item: the history's last item).

score(u, l, i) = <UI[u], IU[i]> + <IL[i], LI[l]>: a matrix factorisation of user and item plus a factorised
transition from the last item ``l`` to ``i``, trained with BPR against one sampled negative.
"""

from __future__ import annotations

import torch
from torch import nn

from recforge.config.types import Int, Key, Str
from recforge.models.losses import bpr_loss
from recforge.models.sequential.base import SequentialRecommender
from recforge.registry import register_model
from recforge.utils.enum_type import InputType


def xavier_normal_embeddings(module: nn.Module) -> None:
    """RecBole's ``FPMC._init_weights``: every embedding table Xavier-normal (padding rows included)."""
    if isinstance(module, nn.Embedding):
        nn.init.xavier_normal_(module.weight.data)


@register_model
class FPMC(SequentialRecommender):
    """A user-item factorisation plus a last-item-to-item factorisation (see the module docstring)."""

    input_type = InputType.PAIRWISE  # RecBole's: trained on (target, negative) pairs
    hyper_parameters = (
        Key("embedding_size", Int(minimum=1), 64, "Dimension of the four embedding tables."),
        Key("loss_type", Str(choices=("BPR",)), "BPR", "BPR: the target against one sampled negative (the only loss)."),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.embedding_size = size = config["embedding_size"]
        self.UI_emb = nn.Embedding(self.n_users, size)  # users, against IU_emb
        self.IU_emb = nn.Embedding(self.n_items, size)  # next items, against UI_emb
        self.LI_emb = nn.Embedding(self.n_items, size, padding_idx=0)  # last items, against IL_emb
        self.IL_emb = nn.Embedding(self.n_items, size)  # next items, against LI_emb
        self.apply(xavier_normal_embeddings)

    def last_items(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """Each history's last item [B] from histories [B, L] and their lengths [B]."""
        return item_seq.gather(dim=1, index=(item_seq_len - 1).unsqueeze(1)).squeeze(1)

    def forward(
        self, user: torch.Tensor, item_seq: torch.Tensor, item_seq_len: torch.Tensor, next_item: torch.Tensor
    ) -> torch.Tensor:
        """Scores [B] of the items ``next_item`` [B] for users [B] after histories [B, L]."""
        last = self.LI_emb(self.last_items(item_seq, item_seq_len))
        mf = (self.UI_emb(user) * self.IU_emb(next_item)).sum(-1)
        fmc = (self.IL_emb(next_item) * last).sum(-1)
        return mf + fmc

    def _score(self, interaction, items: torch.Tensor) -> torch.Tensor:
        user, item_seq = interaction[self.USER_ID], interaction[self.ITEM_SEQ]
        return self.forward(user, item_seq, interaction[self.ITEM_SEQ_LEN], items)

    def calculate_loss(self, interaction) -> torch.Tensor:
        """BPR of the targets' scores against the negatives' (``neg_item_id``)."""
        pos_score = self._score(interaction, interaction[self.POS_ITEM_ID])
        neg_score = self._score(interaction, interaction[self.NEG_ITEM_ID])
        return bpr_loss(pos_score, neg_score)

    def predict(self, interaction) -> torch.Tensor:
        """Scores [B] of ``item_id``."""
        return self._score(interaction, interaction[self.ITEM_ID])

    def full_sort_predict(self, interaction) -> torch.Tensor:
        """Scores [B, n_items]: UI[u] IU^T + LI[last] IL^T."""
        last = self.last_items(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])
        mf = self.UI_emb(interaction[self.USER_ID]) @ self.IU_emb.weight.T
        return mf + self.LI_emb(last) @ self.IL_emb.weight.T
