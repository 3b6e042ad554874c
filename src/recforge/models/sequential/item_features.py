"""The item features of every history position for the feature-aware sequential models (RecBole's
``FeatureSeqEmbLayer``): ``selected_features`` columns of the ``.item`` file embedded as the context-aware models
embed them (``recforge.models.context.fields``), [B, L] item ids -> [B, L, F, d].

Per field: token -> its row; token_seq -> its rows pooled over the ids present (``pooling_mode``: sum, mean or max;
RecBole's: a row without ids is 0 for sum / mean, -1e9 for max); float -> value x a vector of the field; float_seq
-> value x a vector, averaged over the values present. Fields come in RecBole's context order (token_seq, token,
float_seq, float). Differences from RecBole, on purpose (docs/architecture.md): a selected float field is embedded
(RecBole leaves it out unless it is also in ``numerical_features``, and then fails for more than one).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from recforge.config.types import Key, ListOf, Str
from recforge.data.features.fields import FeatureField
from recforge.errors import ConfigError
from recforge.models.context.fields import FieldEmbedding, FieldInputs

POOLING_MODES = ("sum", "mean", "max")


def feature_keys(pooling: str) -> tuple[Key, ...]:
    """``selected_features`` and ``pooling_mode`` (RecBole's keys, its default pooling per model)."""
    return (
        Key("selected_features", ListOf(Str(), min_length=1), ["class"], "The .item columns embedded per position."),
        Key("pooling_mode", Str(choices=POOLING_MODES), pooling, "How a token_seq feature's ids are pooled."),
    )


class ItemFeatureEmbedding(nn.Module):
    """``forward(item_seq [B, L]) -> [B, L, F, d]``: the ``fields`` of each position's item, ``F = len(fields)``.

    Raises:
        ConfigError: a field is not a column of the loaded item features.
    """

    def __init__(self, dataset, fields: list[str], size: int, pooling: str) -> None:
        super().__init__()
        item_feat = dataset.item_feat or {}
        missing = [f for f in fields if f not in item_feat or f == dataset.iid_field]
        if missing:
            raise ConfigError(
                f"config key 'selected_features': {', '.join(missing)} not among the item features (loaded item "
                f"columns: {', '.join(c for c in item_feat if c != dataset.iid_field) or 'none'}); load them "
                "(load_col: {item: [item_id, ...]}) or select others"
            )
        buckets = getattr(dataset, "field2bucketnum", {})
        selected = [FeatureField(name, dataset.field2type[name], "item", buckets.get(name, 0)) for name in fields]
        self.inputs = FieldInputs(dataset, selected)
        dims = {f.name: dataset.num(f.name) for f in selected if f.type.startswith("token")}
        self.embedding = FieldEmbedding(self.inputs.fields, dims, size, pooling)
        self.num_fields = len(selected)

    def forward(self, item_seq: torch.Tensor) -> torch.Tensor:
        flat = item_seq.reshape(-1)
        ids: Mapping[str, Any] = {self.inputs.uid_field: flat, self.inputs.iid_field: flat}
        embedded = self.embedding(self.inputs(ids))  # [B * L, F, d]
        return embedded.view(*item_seq.shape, *embedded.shape[1:])
