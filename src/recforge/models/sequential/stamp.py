"""STAMP: short-term attention/memory priority model (Liu et al., KDD 2018), RecBole's formulation.

With ``x_j`` the history's item embeddings (all L positions, padding included, as RecBole), ``x_t`` the last
item's and ``m_s = sum_j x_j / length`` their mean, the attention ``alpha_j = w_0^T sigmoid(W_1 x_j + W_2 x_t +
W_3 m_s + b_a)`` (not normalised) gives ``m_a = sum_j alpha_j x_j + m_s``; the representation
``tanh(MLP_A m_a) * tanh(MLP_B x_t)`` scores every item by a dot product with its embedding (RecBole drops the
paper's final sigmoid).
"""

from __future__ import annotations

import torch
from torch import nn

from recforge.config.types import Int, Key
from recforge.models.sequential.base import SequentialRecommender, loss_type_key
from recforge.registry import register_model


def stamp_initialization(module: nn.Module) -> None:
    """RecBole's STAMP ``_init_weights``: embeddings normal(0, 0.002) (the padding row included), linear weights
    normal(0, 0.05), zero linear biases."""
    if isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight.data, 0, 0.002)
    elif isinstance(module, nn.Linear):
        nn.init.normal_(module.weight.data, 0, 0.05)
        if module.bias is not None:
            module.bias.data.fill_(0.0)


@register_model
class STAMP(SequentialRecommender):
    """Attention over the history's items, guided by the last item and the mean (the general interest), times
    the last item's own projection (the current interest)."""

    hyper_parameters = (
        Key("embedding_size", Int(minimum=1), 64, "Dimension of item embeddings (and of every hidden vector)."),
        loss_type_key(),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        size = self.embedding_size = config["embedding_size"]
        self.item_embedding = nn.Embedding(self.n_items, size, padding_idx=0)
        self.w1 = nn.Linear(size, size, bias=False)
        self.w2 = nn.Linear(size, size, bias=False)
        self.w3 = nn.Linear(size, size, bias=False)
        self.w0 = nn.Linear(size, 1, bias=False)
        self.b_a = nn.Parameter(torch.zeros(size))
        self.mlp_a = nn.Linear(size, size, bias=True)
        self.mlp_b = nn.Linear(size, size, bias=True)
        self.apply(stamp_initialization)

    def count_alpha(self, context: torch.Tensor, aspect: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        """Attention weights [B, L] of the items ``context`` [B, L, d] given the last item ``aspect`` [B, d] and
        the mean ``output`` [B, d]."""
        res_sum = self.w1(context) + self.w2(aspect).unsqueeze(1) + self.w3(output).unsqueeze(1) + self.b_a
        return self.w0(torch.sigmoid(res_sum)).squeeze(2)

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """[B, L], [B] -> the history's representation [B, d]."""
        memory = self.item_embedding(item_seq)  # [B, L, d]
        last_inputs = self.gather_indexes(memory, item_seq_len - 1)  # [B, d]
        ms = memory.sum(dim=1) / item_seq_len.unsqueeze(1).float()  # [B, d]
        alpha = self.count_alpha(memory, last_inputs, ms)  # [B, L]
        ma = torch.matmul(alpha.unsqueeze(1), memory).squeeze(1) + ms  # [B, d]
        return torch.tanh(self.mlp_a(ma)) * torch.tanh(self.mlp_b(last_inputs))
