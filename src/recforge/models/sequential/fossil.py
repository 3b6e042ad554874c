"""FOSSIL: fusing similarity models with Markov chains for sparse sequential recommendation (He & McAuley, ICDM
2016), RecBole's formulation.

A history ``s`` of length ``n`` is represented by a similarity term and a high-order Markov term,

    h = n^(-alpha) * sum_{j < L} E[s_j]  +  sum_{k < K} (lambda_k + lambda_{u,k}) * E[s_{n-K+k}],

where ``E`` is the item embedding table, the first sum runs over all ``L`` positions of the padded history (the
padding row of ``E`` included, as in RecBole) and the second over the last ``K = order_len`` items, oldest first
(zero vectors where the history is shorter than ``K``). Items score ``h . E[i]``; the loss adds
``reg_weight * (||lambda_u||_2 + ||E[targets]||_2 + ||h||_2)`` (norms of the whole batch's tensors).
"""

from __future__ import annotations

import torch
from torch import nn

from recforge.config.types import Float, Int, Key
from recforge.errors import ConfigError
from recforge.models.sequential.base import SequentialRecommender, loss_type_key
from recforge.registry import register_model


def xavier_normal_embeddings(module: nn.Module) -> None:
    """RecBole's FOSSIL ``init_weights``: xavier-normal embedding and linear weights (the padding row included)."""
    if isinstance(module, (nn.Embedding, nn.Linear)):
        nn.init.xavier_normal_(module.weight.data)


@register_model
class FOSSIL(SequentialRecommender):
    """Item similarity (the length-normalised sum of the history's embeddings) plus a personalised, weighted sum
    of the last ``order_len`` items' embeddings; items are scored by a dot product with their embeddings."""

    hyper_parameters = (
        Key("embedding_size", Int(minimum=1), 64, "Dimension of item embeddings."),
        loss_type_key(),
        Key("reg_weight", Float(minimum=0.0), 0.0, "Weight of the L2 norms added to the loss."),
        Key("order_len", Int(minimum=1), 3, "Order K of the Markov term: the last K items (<= MAX_ITEM_LIST_LENGTH)."),
        Key("alpha", Float(), 0.6, "Exponent of the similarity term's normalisation n^(-alpha)."),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.embedding_size: int = config["embedding_size"]
        self.order_len: int = config["order_len"]
        if self.order_len > self.max_seq_length:
            raise ConfigError(
                f"config key 'order_len': {self.order_len} is longer than MAX_ITEM_LIST_LENGTH ({self.max_seq_length})"
            )
        self.reg_weight: float = config["reg_weight"]
        self.alpha: float = config["alpha"]
        self.item_embedding = nn.Embedding(self.n_items, self.embedding_size, padding_idx=0)
        self.user_lambda = nn.Embedding(self.n_users, self.order_len)
        self.lambda_ = nn.Parameter(torch.zeros(self.order_len))
        self.apply(xavier_normal_embeddings)

    def last_items_embedding(self, seq_item_embedding: torch.Tensor, seq_item_len: torch.Tensor) -> torch.Tensor:
        """[B, L, d], [B] -> [B, order_len, d]: the embeddings of each history's last ``order_len`` items, oldest
        first, with zero vectors before the first item of a shorter history (RecBole's
        ``inverse_seq_item_embedding``)."""
        offsets = torch.arange(self.order_len, device=seq_item_len.device)
        positions = seq_item_len.unsqueeze(1) - self.order_len + offsets  # [B, K]
        index = positions.clamp(min=0).unsqueeze(-1).expand(-1, -1, seq_item_embedding.size(-1))
        gathered = seq_item_embedding.gather(1, index)
        return gathered * (positions >= 0).unsqueeze(-1).to(gathered.dtype)

    def get_high_order_Markov(self, high_order_item_embedding: torch.Tensor, user: torch.Tensor) -> torch.Tensor:
        """[B, K, d], [B] -> [B, d]: ``sum_k (lambda_k + lambda_{u,k}) * e_k``."""
        weights = self.user_lambda(user) + self.lambda_.unsqueeze(0)  # [B, K]
        return (high_order_item_embedding * weights.unsqueeze(2)).sum(dim=1)

    def get_similarity(self, seq_item_embedding: torch.Tensor, seq_item_len: torch.Tensor) -> torch.Tensor:
        """[B, L, d], [B] -> [B, d]: ``n^(-alpha) * sum_j e_j`` over all L positions."""
        coeff = torch.pow(seq_item_len.unsqueeze(1), -self.alpha).float()  # [B, 1]
        return coeff * seq_item_embedding.sum(dim=1)

    def forward(self, seq_item: torch.Tensor, seq_item_len: torch.Tensor, user: torch.Tensor) -> torch.Tensor:
        """[B, L], [B], [B] -> the history's representation [B, d]."""
        seq_item_embedding = self.item_embedding(seq_item)
        high_order = self.get_high_order_Markov(self.last_items_embedding(seq_item_embedding, seq_item_len), user)
        return high_order + self.get_similarity(seq_item_embedding, seq_item_len)

    def sequence_output(self, interaction) -> torch.Tensor:
        return self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN], interaction[self.USER_ID])

    def reg_loss(
        self, user_embedding: torch.Tensor, item_embedding: torch.Tensor, seq_output: torch.Tensor
    ) -> torch.Tensor:
        """``reg_weight`` times the sum of the three tensors' 2-norms (not squared)."""
        norms = torch.norm(user_embedding, p=2) + torch.norm(item_embedding, p=2) + torch.norm(seq_output, p=2)
        return self.reg_weight * norms

    def calculate_loss(self, interaction) -> torch.Tensor:
        seq_output = self.sequence_output(interaction)
        user_lambda = self.user_lambda(interaction[self.USER_ID])
        pos_items_embedding = self.item_embedding(interaction[self.POS_ITEM_ID])
        loss = self.output_loss(seq_output, interaction)
        return loss + self.reg_loss(user_lambda, pos_items_embedding, seq_output)
