"""MLP models over feature fields: WideDeep and FNN (RecBole's definitions and defaults)."""

from __future__ import annotations

import torch

from recforge.models.context.base import EMBEDDING_KEY, ContextRecommender, mlp_keys
from recforge.registry import register_model


@register_model
class WideDeep(ContextRecommender):
    """Wide & Deep (Cheng et al., 2016): the first-order (wide) part plus an MLP over the field embeddings."""

    hyper_parameters = (EMBEDDING_KEY, *mlp_keys([32, 16, 8], 0.1))

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.build_deep_part(config)
        self.init_weights()

    def logit(self, interaction) -> torch.Tensor:
        return self.first_order_linear(interaction) + self.deep_logit(self.embed(interaction))


@register_model
class FNN(ContextRecommender):
    """FNN (Zhang et al., 2016): a tanh MLP over the concatenated field embeddings, nothing else."""

    hyper_parameters = (EMBEDDING_KEY, *mlp_keys([256, 256, 256], 0.2))

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.build_deep_part(config, activation="tanh")
        self.init_weights()

    def logit(self, interaction) -> torch.Tensor:
        return self.deep_logit(self.embed(interaction))
