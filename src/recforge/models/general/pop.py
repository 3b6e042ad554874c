"""Pop: every user gets the items with the most training interactions."""

from __future__ import annotations

import numpy as np
import torch

from recforge.models.base import GeneralRecommender, InputType, ModelType
from recforge.registry import register_model


@register_model
class Pop(GeneralRecommender):
    """Scores item ``i`` by its number of training interactions divided by the largest such number.

    RecBole's Pop counts an item at most once per training batch (``cnt[item] = cnt[item] + 1`` with repeated
    indices), so its counts saturate at the number of batches; here every interaction counts.
    """

    input_type = InputType.POINTWISE
    type = ModelType.TRADITIONAL
    trainable = False
    hyper_parameters = ()

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.register_buffer("item_cnt", torch.zeros(self.n_items, dtype=torch.float64))

    def fit_statistics(self, train_dataset) -> None:
        counts = np.bincount(train_dataset.inter_feat[train_dataset.iid_field], minlength=self.n_items)
        self.item_cnt.copy_(torch.from_numpy(counts.astype(np.float64)))

    def _scores(self) -> torch.Tensor:
        return self.item_cnt / self.item_cnt.max().clamp(min=1.0)

    def predict(self, interaction) -> torch.Tensor:
        return self._scores()[interaction[self.ITEM_ID]]

    def full_sort_predict(self, interaction) -> torch.Tensor:
        return self._scores().unsqueeze(0).repeat(len(interaction[self.USER_ID]), 1)
