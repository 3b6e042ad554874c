"""Linear and factorisation-machine models over feature fields: LR, FM, DeepFM, NFM (RecBole's definitions and
defaults)."""

from __future__ import annotations

import torch
from torch import nn

from recforge.models.context.base import EMBEDDING_KEY, ContextRecommender, fm_interaction, mlp_keys
from recforge.models.context.fields import mlp_layers
from recforge.registry import register_model


@register_model
class LR(ContextRecommender):
    """Logistic regression: a weight per feature value plus a bias."""

    hyper_parameters = (EMBEDDING_KEY,)

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.init_weights()

    def logit(self, interaction) -> torch.Tensor:
        return self.first_order_linear(interaction)


@register_model
class FM(ContextRecommender):
    """Factorisation machine (Rendle, 2010): first order plus every pairwise product of field embeddings."""

    hyper_parameters = (EMBEDDING_KEY,)

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.init_weights()

    def logit(self, interaction) -> torch.Tensor:
        return self.first_order_linear(interaction) + fm_interaction(self.embed(interaction))


@register_model
class DeepFM(ContextRecommender):
    """DeepFM (Guo et al., 2017): FM plus an MLP over the concatenated field embeddings."""

    hyper_parameters = (EMBEDDING_KEY, *mlp_keys([128, 128, 128], 0.2))

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.build_deep_part(config)
        self.init_weights()

    def logit(self, interaction) -> torch.Tensor:
        embeddings = self.embed(interaction)
        return self.first_order_linear(interaction) + fm_interaction(embeddings) + self.deep_logit(embeddings)


@register_model
class NFM(ContextRecommender):
    """Neural factorisation machine (He & Chua, 2017): an MLP (sigmoid, batch norm) over the bi-interaction
    pooling of the field embeddings, plus the first order."""

    hyper_parameters = (EMBEDDING_KEY, *mlp_keys([64, 64, 64], 0.0))

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        hidden = config["mlp_hidden_size"]
        self.batch_norm = nn.BatchNorm1d(self.embedding_size)
        self.mlp = mlp_layers([self.embedding_size, *hidden], config["dropout_prob"], "sigmoid", batch_norm=True)
        self.predict_layer = nn.Linear(hidden[-1], 1, bias=False)
        self.init_weights()

    def logit(self, interaction) -> torch.Tensor:
        pooled = self.batch_norm(fm_interaction(self.embed(interaction), reduce_sum=False))
        return self.predict_layer(self.mlp(pooled)).squeeze(-1) + self.first_order_linear(interaction)
