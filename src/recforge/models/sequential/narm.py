"""NARM: neural attentive session-based recommendation (Li et al., CIKM 2017), RecBole's formulation.

A GRU reads the history's item embeddings. Its state at the last item is the global encoding ``c_g = h_t``; the
local encoding attends over every non-padding state, ``c_l = sum_j v^T sigmoid(A_1 h_j + A_2 h_t) h_j`` (the
weights are not normalised, as in RecBole). ``B [c_l; c_g]`` scores every item by a dot product with its embedding.
"""

from __future__ import annotations

import torch
from torch import nn

from recforge.config.types import Float, Int, Key, ListOf
from recforge.errors import ConfigError
from recforge.models.sequential.base import SequentialRecommender, loss_type_key
from recforge.registry import register_model


def xavier_normal_initialization(module: nn.Module) -> None:
    """RecBole's NARM ``_init_weights``: xavier-normal embeddings (the padding row included) and linear weights,
    zero linear biases; the GRU keeps PyTorch's initialisation."""
    if isinstance(module, nn.Embedding):
        nn.init.xavier_normal_(module.weight.data)
    elif isinstance(module, nn.Linear):
        nn.init.xavier_normal_(module.weight.data)
        if module.bias is not None:
            nn.init.constant_(module.bias.data, 0)


@register_model
class NARM(SequentialRecommender):
    """A GRU encoder with attention over its states (local purpose) and its last state (global sequence)."""

    hyper_parameters = (
        Key("embedding_size", Int(minimum=1), 64, "Dimension of item embeddings."),
        Key("hidden_size", Int(minimum=1), 128, "GRU hidden units."),
        Key("n_layers", Int(minimum=1), 1, "GRU layers."),
        Key(
            "dropout_probs",
            ListOf(Float(minimum=0.0, maximum=1.0), min_length=2),
            [0.25, 0.5],
            "Dropout on the item embeddings and on the concatenated encoding [c_l; c_g].",
        ),
        loss_type_key(),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.embedding_size: int = config["embedding_size"]
        self.hidden_size: int = config["hidden_size"]
        self.n_layers: int = config["n_layers"]
        self.dropout_probs: list[float] = list(config["dropout_probs"])
        if len(self.dropout_probs) != 2:
            raise ConfigError(f"config key 'dropout_probs': {self.dropout_probs} must hold two rates")
        hidden = self.hidden_size
        self.item_embedding = nn.Embedding(self.n_items, self.embedding_size, padding_idx=0)
        self.emb_dropout = nn.Dropout(self.dropout_probs[0])
        self.gru = nn.GRU(self.embedding_size, hidden, self.n_layers, bias=False, batch_first=True)
        self.a_1 = nn.Linear(hidden, hidden, bias=False)
        self.a_2 = nn.Linear(hidden, hidden, bias=False)
        self.v_t = nn.Linear(hidden, 1, bias=False)
        self.ct_dropout = nn.Dropout(self.dropout_probs[1])
        self.b = nn.Linear(2 * hidden, self.embedding_size, bias=False)
        self.apply(xavier_normal_initialization)

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """[B, L], [B] -> the history's representation [B, embedding_size]."""
        gru_out, _ = self.gru(self.emb_dropout(self.item_embedding(item_seq)))  # [B, L, H]
        c_global = ht = self.gather_indexes(gru_out, item_seq_len - 1)  # [B, H]
        mask = item_seq.gt(0).unsqueeze(2)  # [B, L, 1]: padding states take no part
        alpha = self.v_t(mask * torch.sigmoid(self.a_1(gru_out) + self.a_2(ht).unsqueeze(1)))  # [B, L, 1]
        c_local = torch.sum(alpha * gru_out, dim=1)  # [B, H]
        c_t = self.ct_dropout(torch.cat([c_local, c_global], dim=1))  # [B, 2H]
        return self.b(c_t)
