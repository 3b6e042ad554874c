"""DSSM over feature fields (RecBole's definition and defaults): a user tower and an item tower, scored by cosine.

RecBole's ``double_tower`` mode: the fields are the user's (its id and ``.user`` columns) and the item's (its id and
``.item`` columns); the interaction's context columns are not used. Each tower is an MLP (tanh, batch norm,
dropout) over its own fields' concatenated embeddings; the logit is the cosine of the two outputs, so ``predict`` =
sigmoid(cosine) lies in [sigmoid(-1), sigmoid(1)].
"""

from __future__ import annotations

import torch

from recforge.config.types import Bool, Key
from recforge.data.features.fields import FeatureField
from recforge.errors import ConfigError
from recforge.models.context.base import EMBEDDING_KEY, ContextRecommender, mlp_keys
from recforge.models.context.fields import mlp_layers
from recforge.registry import register_model


@register_model
class DSSM(ContextRecommender):
    """DSSM (Huang et al., CIKM 2013): cos(user tower(user fields), item tower(item fields)) (see the module
    docstring)."""

    hyper_parameters = (
        EMBEDDING_KEY,
        *mlp_keys([256, 256, 256], 0.3),
        Key("double_tower", Bool(), True, "Split the fields into a user and an item tower (DSSM needs it)."),
    )

    def __init__(self, config, dataset) -> None:
        if not config["double_tower"]:
            raise ConfigError("config key 'double_tower': DSSM scores a user tower against an item tower; set true")
        super().__init__(config, dataset)
        user = [self._is_user(f) for f in self.inputs.fields]
        self.register_buffer("user_fields", torch.tensor(user, dtype=torch.bool), persistent=False)
        hidden, dropout, d = config["mlp_hidden_size"], config["dropout_prob"], self.embedding_size
        self.user_mlp = mlp_layers([sum(user) * d, *hidden], dropout, "tanh", batch_norm=True)
        self.item_mlp = mlp_layers([(len(user) - sum(user)) * d, *hidden], dropout, "tanh", batch_norm=True)
        self.init_weights()

    def _is_user(self, field: FeatureField) -> bool:
        return field.source == "user" or field.name == self.inputs.uid_field

    def select_fields(self, fields: list[FeatureField]) -> list[FeatureField]:
        """The user's and the item's fields (the context columns are in no tower)."""
        return [f for f in fields if f.source != "inter" or f.name in (self.USER_ID, self.ITEM_ID)]

    def towers(self, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The user and item towers' [B, hidden[-1]] outputs for [B, F, d] embeddings."""
        user = self.user_mlp(embeddings[:, self.user_fields].flatten(1))
        item = self.item_mlp(embeddings[:, ~self.user_fields].flatten(1))
        return user, item

    def logit(self, interaction) -> torch.Tensor:
        user, item = self.towers(self.embed(interaction))
        return torch.cosine_similarity(user, item, dim=1)
