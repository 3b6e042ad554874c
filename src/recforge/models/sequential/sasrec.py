"""SASRec: self-attentive sequential recommendation (Kang & McAuley, ICDM 2018), RecBole's formulation."""

from __future__ import annotations

import torch
from torch import nn

from recforge.models.sequential.base import (
    SequentialRecommender,
    gbce_keys,
    loss_type_key,
    normal_initialization,
    transformer_keys,
)
from recforge.models.sequential.layers import TransformerEncoder
from recforge.registry import register_model


@register_model
class SASRec(SequentialRecommender):
    """A causal transformer over the history's item + position embeddings; the representation of the last item
    scores every item by a dot product with its embedding (the input table, shared)."""

    hyper_parameters = (*transformer_keys(0.5), loss_type_key(gbce=True), *gbce_keys())

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        hidden = config["hidden_size"]
        self.item_embedding = nn.Embedding(self.n_items, hidden, padding_idx=0)
        self.position_embedding = nn.Embedding(self.max_seq_length, hidden)
        self.trm_encoder = TransformerEncoder.from_config(config)
        self.LayerNorm = nn.LayerNorm(hidden, eps=config["layer_norm_eps"])
        self.dropout = nn.Dropout(config["hidden_dropout_prob"])
        self.apply(normal_initialization(config["initializer_range"]))

    def position_outputs(self, item_seq: torch.Tensor) -> torch.Tensor:
        """Every position's output [B, L, d] (position ``t`` sees items ``0..t``)."""
        return self.encode(item_seq)

    def encode(self, item_seq: torch.Tensor) -> torch.Tensor:
        """Every position's output [B, L, d] (position ``t`` sees items ``0..t``)."""
        mask = self.get_attention_mask(item_seq)
        return self.trm_encoder(self.embed(item_seq), mask, output_all_encoded_layers=False)[-1]

    def embed(self, item_seq: torch.Tensor) -> torch.Tensor:
        """The encoder's input [B, L, d]: dropout(LayerNorm(item + position embeddings))."""
        positions = torch.arange(item_seq.size(1), device=item_seq.device).unsqueeze(0)
        return self.dropout(self.LayerNorm(self.item_embedding(item_seq) + self.position_embedding(positions)))

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """The output at each history's last item [B, d] (the last layer runs at that position only)."""
        mask = self.get_attention_mask(item_seq)
        last = (item_seq_len - 1).unsqueeze(1)
        return self.trm_encoder.outputs_at(self.embed(item_seq), mask, last).squeeze(1)
