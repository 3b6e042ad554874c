"""GRU4RecF: GRU4Rec with item features (Hidasi et al., RecSys 2016, the parallel architecture), RecBole's
formulation."""

from __future__ import annotations

import torch
from torch import nn

from recforge.config.types import Float, Int, Key
from recforge.models.init import xavier_normal_initialization
from recforge.models.sequential.base import SequentialRecommender, loss_type_key
from recforge.models.sequential.item_features import ItemFeatureEmbedding, feature_keys
from recforge.registry import register_model


@register_model
class GRU4RecF(SequentialRecommender):
    """Two GRUs (no biases), one over the item embeddings (after dropout), one over the concatenated feature
    embeddings of each position; their outputs at the last item, concatenated and projected to the embedding
    size, score every item by a dot product with its embedding."""

    reads_item_features = True  # RecBole loads ml-100k's item columns for it (special_sequential_on_ml-100k.yaml)
    hyper_parameters = (
        Key("embedding_size", Int(minimum=1), 64, "Dimension of item and feature embeddings."),
        Key("hidden_size", Int(minimum=1), 128, "GRU hidden units."),
        Key("num_layers", Int(minimum=1), 1, "GRU layers."),
        Key("dropout_prob", Float(minimum=0.0, maximum=1.0), 0.3, "Dropout on the item embeddings."),
        *feature_keys("sum"),
        loss_type_key(),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        size, hidden, layers = config["embedding_size"], config["hidden_size"], config["num_layers"]
        self.item_embedding = nn.Embedding(self.n_items, size, padding_idx=0)
        self.feature_embed_layer = ItemFeatureEmbedding(
            dataset, config["selected_features"], size, config["pooling_mode"]
        )
        fields = self.feature_embed_layer.num_fields
        self.item_gru_layers = nn.GRU(size, hidden, layers, bias=False, batch_first=True)
        self.feature_gru_layers = nn.GRU(size * fields, hidden, layers, bias=False, batch_first=True)
        self.dense_layer = nn.Linear(hidden * 2, size)
        self.dropout = nn.Dropout(config["dropout_prob"])
        self.apply(xavier_normal_initialization)  # embeddings and linears; the GRUs keep torch's (RecBole's)

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        item_output, _ = self.item_gru_layers(self.dropout(self.item_embedding(item_seq)))
        feature_output, _ = self.feature_gru_layers(self.feature_embed_layer(item_seq).flatten(2))
        last = item_seq_len - 1
        both = torch.cat([self.gather_indexes(item_output, last), self.gather_indexes(feature_output, last)], -1)
        return self.dense_layer(both)  # the projection is per position: projecting the last one alone is equal
