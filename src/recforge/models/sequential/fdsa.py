"""FDSA: feature-level deeper self-attention network for sequential recommendation (Zhang et al., IJCAI 2019),
RecBole's formulation."""

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


class VanillaAttention(nn.Module):
    """RecBole's VanillaAttention: [.., F, d] -> ([.., d], weights [.., F]), softmax over F of a one-hidden-layer
    projection."""

    def __init__(self, hidden: int, attention: int) -> None:
        super().__init__()
        self.projection = nn.Sequential(nn.Linear(hidden, attention), nn.ReLU(True), nn.Linear(attention, 1))

    def forward(self, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weights = torch.softmax(self.projection(values).squeeze(-1), dim=-1)
        return (values * weights.unsqueeze(-1)).sum(dim=-2), weights


@register_model
class FDSA(SequentialRecommender):
    """Two causal transformer streams, one over item + position embeddings, one over each position's features
    (attention-pooled over the fields) + position embeddings; their outputs at the last item, concatenated,
    projected, normalised (one LayerNorm serves all three places, as in RecBole) and dropped out, score every item
    by a dot product with its embedding."""

    reads_item_features = True  # RecBole loads ml-100k's item columns for it (special_sequential_on_ml-100k.yaml)
    hyper_parameters = (*transformer_keys(0.5), *feature_keys("mean"), loss_type_key())

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        hidden = config["hidden_size"]
        self.item_embedding = nn.Embedding(self.n_items, hidden, padding_idx=0)
        self.position_embedding = nn.Embedding(self.max_seq_length, hidden)
        self.feature_embed_layer = ItemFeatureEmbedding(
            dataset, config["selected_features"], hidden, config["pooling_mode"]
        )
        self.item_trm_encoder = TransformerEncoder.from_config(config)
        self.feature_att_layer = VanillaAttention(hidden, hidden)
        self.feature_trm_encoder = TransformerEncoder.from_config(config)
        self.LayerNorm = nn.LayerNorm(hidden, eps=config["layer_norm_eps"])
        self.dropout = nn.Dropout(config["hidden_dropout_prob"])
        self.concat_layer = nn.Linear(hidden * 2, hidden)
        self.apply(normal_initialization(config["initializer_range"]))

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        positions = self.position_embedding(torch.arange(item_seq.size(1), device=item_seq.device).unsqueeze(0))
        item_input = self.dropout(self.LayerNorm(self.item_embedding(item_seq) + positions))
        features, _ = self.feature_att_layer(self.feature_embed_layer(item_seq))
        feature_input = self.dropout(self.LayerNorm(features + positions))
        mask = self.get_attention_mask(item_seq)
        last = (item_seq_len - 1).unsqueeze(1)
        item_output = self.item_trm_encoder.outputs_at(item_input, mask, last).squeeze(1)
        feature_output = self.feature_trm_encoder.outputs_at(feature_input, mask, last).squeeze(1)
        return self.dropout(self.LayerNorm(self.concat_layer(torch.cat([item_output, feature_output], -1))))
