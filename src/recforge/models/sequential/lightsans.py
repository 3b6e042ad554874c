"""LightSANs: low-rank decomposed self-attention networks for next-item recommendation (Fan et al., SIGIR 2021),
RecBole's formulation.

The history's item embeddings (LayerNorm, dropout) pass through ``LightTransformerEncoder``: each layer's keys and
values are pooled into ``k_interests`` latent interests, and the positions enter through a decoupled position
attention instead of being added to the items. The output at the last item scores every item by a dot product with
its embedding (the input table, shared).
"""

from __future__ import annotations

import torch
from torch import nn

from recforge.config.types import Int, Key
from recforge.models.sequential.base import (
    SequentialRecommender,
    loss_type_key,
    normal_initialization,
    transformer_keys,
)
from recforge.models.sequential.lightsans_layers import LightTransformerEncoder
from recforge.registry import register_model


@register_model
class LightSANs(SequentialRecommender):
    """Low-rank self-attention over item embeddings with decoupled position attention (see the module docstring)."""

    hyper_parameters = (
        Key("k_interests", Int(minimum=1), 5, "Latent interests the L positions' keys and values are pooled into."),
        *transformer_keys(0.5),
        loss_type_key(),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        hidden = config["hidden_size"]
        self.seq_len = self.max_seq_length
        self.item_embedding = nn.Embedding(self.n_items, hidden, padding_idx=0)
        self.position_embedding = nn.Embedding(self.max_seq_length, hidden)
        self.trm_encoder = LightTransformerEncoder(
            n_layers=config["n_layers"],
            n_heads=config["n_heads"],
            k_interests=config["k_interests"],
            hidden_size=hidden,
            seq_len=self.seq_len,
            inner_size=config["inner_size"],
            hidden_dropout_prob=config["hidden_dropout_prob"],
            attn_dropout_prob=config["attn_dropout_prob"],
            hidden_act=config["hidden_act"],
            layer_norm_eps=config["layer_norm_eps"],
        )
        self.LayerNorm = nn.LayerNorm(hidden, eps=config["layer_norm_eps"])
        self.dropout = nn.Dropout(config["hidden_dropout_prob"])
        self.apply(normal_initialization(config["initializer_range"]))

    def encode(self, item_seq: torch.Tensor) -> torch.Tensor:
        """Every position's output [B, L, d] (no mask: every position, padding included, is pooled)."""
        positions = self.position_embedding(torch.arange(item_seq.size(1), device=item_seq.device))  # [L, d]
        hidden = self.dropout(self.LayerNorm(self.item_embedding(item_seq)))
        return self.trm_encoder(hidden, positions, output_all_encoded_layers=False)[-1]

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """[B, L], [B] -> the output at each history's last item [B, d]."""
        return self.gather_indexes(self.encode(item_seq), item_seq_len - 1)
