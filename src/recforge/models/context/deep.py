"""MLP models over feature fields: WideDeep and FNN (RecBole's definitions and defaults)."""

from __future__ import annotations

import torch
from torch import nn

from recforge.models.context.base import EMBEDDING_KEY, ContextRecommender, mlp_keys
from recforge.models.context.fields import mlp_layers
from recforge.registry import register_model


@register_model
class WideDeep(ContextRecommender):
    """Wide & Deep (Cheng et al., 2016): the first-order (wide) part plus an MLP over the field embeddings."""

    hyper_parameters = (EMBEDDING_KEY, *mlp_keys([32, 16, 8], 0.1))

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        hidden = config["mlp_hidden_size"]
        self.mlp = mlp_layers([self.num_feature_field * self.embedding_size, *hidden], config["dropout_prob"])
        self.deep_predict_layer = nn.Linear(hidden[-1], 1)
        self.init_weights()

    def logit(self, interaction) -> torch.Tensor:
        deep = self.deep_predict_layer(self.mlp(self.embed(interaction).flatten(1))).squeeze(-1)
        return self.first_order_linear(interaction) + deep


@register_model
class FNN(ContextRecommender):
    """FNN (Zhang et al., 2016): a tanh MLP over the concatenated field embeddings, nothing else."""

    hyper_parameters = (EMBEDDING_KEY, *mlp_keys([256, 256, 256], 0.2))

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        hidden = config["mlp_hidden_size"]
        size = self.num_feature_field * self.embedding_size
        self.mlp = mlp_layers([size, *hidden], config["dropout_prob"], "tanh")
        self.predict_layer = nn.Linear(hidden[-1], 1)
        self.init_weights()

    def logit(self, interaction) -> torch.Tensor:
        return self.predict_layer(self.mlp(self.embed(interaction).flatten(1))).squeeze(-1)
