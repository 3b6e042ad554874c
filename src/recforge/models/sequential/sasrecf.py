"""SASRecF: SASRec with item features, RecBole's formulation (its feature-aware SASRec variant)."""

from __future__ import annotations

import torch
from torch import nn

from recforge.models.sequential.base import (
    SequentialRecommender,
    loss_type_key,
    normal_initialization,
    transformer_keys,
)
from recforge.models.sequential.item_features import ItemFeatureEmbedding, feature_keys
from recforge.models.sequential.layers import TransformerEncoder
from recforge.registry import register_model


@register_model
class SASRecF(SequentialRecommender):
    """Each position's item embedding and its item's ``selected_features`` embeddings, concatenated and projected
    to d, plus the position embedding, through SASRec's causal transformer; the output at the last item scores
    every item by a dot product with its embedding (features never enter the scored side)."""

    reads_item_features = True  # RecBole loads ml-100k's item columns for it (special_sequential_on_ml-100k.yaml)
    hyper_parameters = (*transformer_keys(0.5), *feature_keys("sum"), loss_type_key())

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        hidden = config["hidden_size"]
        self.item_embedding = nn.Embedding(self.n_items, hidden, padding_idx=0)
        self.position_embedding = nn.Embedding(self.max_seq_length, hidden)
        self.feature_embed_layer = ItemFeatureEmbedding(
            dataset, config["selected_features"], hidden, config["pooling_mode"]
        )
        self.trm_encoder = TransformerEncoder.from_config(config)
        self.concat_layer = nn.Linear(hidden * (1 + self.feature_embed_layer.num_fields), hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=config["layer_norm_eps"])
        self.dropout = nn.Dropout(config["hidden_dropout_prob"])
        self.apply(normal_initialization(config["initializer_range"]))

    def embed(self, item_seq: torch.Tensor) -> torch.Tensor:
        """The encoder's input [B, L, d]: dropout(LayerNorm(concat_layer([item, features]) + position))."""
        features = self.feature_embed_layer(item_seq).flatten(2)  # [B, L, F * d], field after field
        combined = self.concat_layer(torch.cat([self.item_embedding(item_seq), features], dim=-1))
        positions = torch.arange(item_seq.size(1), device=item_seq.device).unsqueeze(0)
        return self.dropout(self.LayerNorm(combined + self.position_embedding(positions)))

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """The output at each history's last item [B, d] (the last layer runs at that position only)."""
        mask = self.get_attention_mask(item_seq)
        last = (item_seq_len - 1).unsqueeze(1)
        return self.trm_encoder.outputs_at(self.embed(item_seq), mask, last).squeeze(1)
