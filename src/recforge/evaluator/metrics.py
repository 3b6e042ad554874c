"""RecBole's ``recbole.evaluator.metrics``: its 16 metric classes, each computing with recforge's definition
(``recforge.evaluation.metrics``, where the formulas are documented).

Where recforge deliberately differs (docs/architecture.md, "Deliberate differences from RecBole"), these classes
give recforge's value: ItemCoverage and GiniIndex count real items only (``num_items`` is RecBole's id count,
padding included), and no result is rounded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from recforge.evaluation import metrics as M
from recforge.evaluator.base_metric import (
    AbstractMetric,
    EvaluatorType,
    LossMetric,
    TopkMetric,
    count_array,
    item_counts,
    recommended_slots,
    slot_values,
    topk_means,
    valid_slots,
)

# -- ranking @k (rec.topk) -----------------------------------------------------------------------------


class Hit(TopkMetric):
    """Hit@k: 1 if any of the top k items is a positive."""

    name = "hit"


class MRR(TopkMetric):
    """MRR@k: 1 / rank of the first positive within the top k."""

    name = "mrr"


class MAP(TopkMetric):
    """MAP@k: the mean of Precision@r over the ranks r <= k holding a positive, over min(positives, k)."""

    name = "map"


class Recall(TopkMetric):
    """Recall@k: positives in the top k / the user's positives."""

    name = "recall"


class NDCG(TopkMetric):
    """NDCG@k: DCG@k / IDCG@k with binary relevance."""

    name = "ndcg"


class Precision(TopkMetric):
    """Precision@k: positives in the top k / k."""

    name = "precision"


# -- GAUC (rec.meanrank) -------------------------------------------------------------------------------


class GAUC(AbstractMetric):
    """GAUC: the users' AUCs weighted by their positives. ``rec.meanrank`` [U, 3] holds RecBole's columns: the
    sum of the positives' descending average ranks, the user's candidates, the user's positives."""

    metric_type = EvaluatorType.RANKING
    metric_need = ["rec.meanrank"]  # noqa: RUF012 - RecBole's class attribute

    def calculate_metric(self, dataobject: Any) -> dict[str, float]:
        pos_rank_sum, user_len_list, pos_len_list = dataobject.get("rec.meanrank").numpy().T
        return {"gauc": self.metric_info(pos_rank_sum, user_len_list, pos_len_list)}

    def metric_info(self, pos_rank_sum: np.ndarray, user_len_list: np.ndarray, pos_len_list: np.ndarray) -> float:
        """GAUC from descending rank sums (RecBole's input): with n candidates, a descending rank r is the ascending
        rank n + 1 - r that ``weighted_user_auc`` reads. Users without positives or negatives are left out."""
        positives = np.asarray(pos_len_list).reshape(-1)
        candidates = np.asarray(user_len_list).reshape(-1)
        ascending = positives * (candidates + 1) - np.asarray(pos_rank_sum).reshape(-1)
        return M.weighted_user_auc(positives, candidates - positives, ascending)


# -- value (rec.score, data.label) ---------------------------------------------------------------------


class AUC(LossMetric):
    """AUC over all scored rows, ties counting one half."""

    name = "auc"


class MAE(LossMetric):
    """MAE: mean |prediction - label|."""

    smaller = True
    name = "mae"


class RMSE(LossMetric):
    """RMSE: sqrt(mean (prediction - label)^2)."""

    smaller = True
    name = "rmse"


class LogLoss(LossMetric):
    """LogLoss: mean binary cross-entropy of predicted probabilities (clipped to [1e-15, 1 - 1e-15])."""

    smaller = True
    name = "logloss"


# -- beyond accuracy (rec.items) ------------------------------------------------------------------------


class _ItemListMetric(AbstractMetric):
    """A metric of the recommended lists (``rec.items`` [U, max(topk)]) at each cut-off."""

    metric_type = EvaluatorType.RANKING
    metric_need = ["rec.items"]  # noqa: RUF012 - RecBole's class attribute

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.topk = list(config["topk"])

    def topk_result(self, metric: str, value: np.ndarray) -> dict[str, float]:
        """``{"metric@k": mean over users of column k - 1 of value}`` for the configured cut-offs."""
        return topk_means(metric, value, self.topk)


class ItemCoverage(_ItemListMetric):
    """ItemCoverage@k: distinct recommended items / real items (recforge: padding not counted)."""

    metric_need = ["rec.items", "data.num_items"]  # noqa: RUF012 - RecBole's class attribute

    def used_info(self, dataobject: Any) -> tuple[np.ndarray, int]:
        """(recommended items [U, K], RecBole's ``data.num_items``: item ids, padding included)."""
        return dataobject.get("rec.items").numpy(), dataobject.get("data.num_items")

    def calculate_metric(self, dataobject: Any) -> dict[str, float]:
        num_items = dataobject.get("data.num_items")
        return {
            M.metric_key("itemcoverage", k): self.get_coverage(recommended_slots(dataobject, k), num_items)
            for k in self.topk
        }

    def get_coverage(self, item_matrix: np.ndarray, num_items: int) -> float:
        """Coverage of the items in ``item_matrix`` among the ``num_items - 1`` real items (id 0 is padding)."""
        return M.item_coverage(item_counts(item_matrix, num_items), num_items - 1)


class GiniIndex(_ItemListMetric):
    """GiniIndex@k of how often items are recommended, over the real items (recforge: padding not counted)."""

    smaller = True
    metric_need = ["rec.items", "data.num_items"]  # noqa: RUF012 - RecBole's class attribute

    def used_info(self, dataobject: Any) -> tuple[np.ndarray, int]:
        """(recommended items [U, K], RecBole's ``data.num_items``: item ids, padding included)."""
        return dataobject.get("rec.items").numpy(), dataobject.get("data.num_items")

    def calculate_metric(self, dataobject: Any) -> dict[str, float]:
        num_items = dataobject.get("data.num_items")
        return {
            M.metric_key("giniindex", k): self.get_gini(recommended_slots(dataobject, k), num_items) for k in self.topk
        }

    def get_gini(self, item_matrix: np.ndarray, num_items: int) -> float:
        """Gini index of the items of ``item_matrix`` among the ``num_items - 1`` real items (id 0 is padding)."""
        return M.gini_index(item_counts(item_matrix, num_items), num_items - 1)


class ShannonEntropy(_ItemListMetric):
    """ShannonEntropy@k of the recommended items' distribution, divided by the number of distinct items (as
    RecBole 1.2.1's code)."""

    def used_info(self, dataobject: Any) -> np.ndarray:
        """Recommended items [U, K]."""
        return dataobject.get("rec.items").numpy()

    def calculate_metric(self, dataobject: Any) -> dict[str, float]:
        return {
            M.metric_key("shannonentropy", k): self.get_entropy(recommended_slots(dataobject, k)) for k in self.topk
        }

    def get_entropy(self, item_matrix: np.ndarray) -> float:
        """Entropy of the items of ``item_matrix``."""
        counts = item_counts(item_matrix, 0)
        return M.shannon_entropy(counts, len(counts) - 1)


class AveragePopularity(_ItemListMetric):
    """AveragePopularity@k: mean training interactions of the top k items, per user."""

    smaller = True
    metric_need = ["rec.items", "data.count_items"]  # noqa: RUF012 - RecBole's class attribute

    def used_info(self, dataobject: Any) -> tuple[np.ndarray, dict[int, int]]:
        """(recommended items [U, K], ``{item id: training interactions}``)."""
        return dataobject.get("rec.items").numpy(), dict(dataobject.get("data.count_items"))

    def calculate_metric(self, dataobject: Any) -> dict[str, float]:
        item_matrix, item_count = self.used_info(dataobject)
        values = self.metric_info(self.get_pop(item_matrix, item_count), valid_slots(dataobject))
        return self.topk_result("averagepopularity", values)

    def get_pop(self, item_matrix: np.ndarray, item_count: Mapping[int, int]) -> np.ndarray:
        """Training interactions of each item of ``item_matrix`` (0 for items missing from ``item_count``)."""
        item_matrix = np.asarray(item_matrix, dtype=np.int64)
        return count_array(item_count, int(item_matrix.max(initial=0)) + 1)[item_matrix]

    def metric_info(self, values: np.ndarray, valid: torch.Tensor | None = None) -> np.ndarray:
        """Running mean over ranks 1..K of per-slot popularities ``values`` [U, K] (``valid``: filler slots
        excluded)."""
        return M.average_popularity(*slot_values(values), valid).numpy()


class TailPercentage(_ItemListMetric):
    """TailPercentage@k: share of the top k items that are long-tail items (``tail_ratio``; default 0.1)."""

    metric_need = ["rec.items", "data.count_items"]  # noqa: RUF012 - RecBole's class attribute

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        tail = config["tail_ratio"]
        self.tail = 0.1 if tail is None or tail <= 0 else tail

    def used_info(self, dataobject: Any) -> tuple[np.ndarray, dict[int, int]]:
        """(recommended items [U, K], ``{item id: training interactions}``)."""
        return dataobject.get("rec.items").numpy(), dict(dataobject.get("data.count_items"))

    def calculate_metric(self, dataobject: Any) -> dict[str, float]:
        item_matrix, count_items = self.used_info(dataobject)
        values = self.metric_info(self.get_tail(item_matrix, count_items), valid_slots(dataobject))
        return self.topk_result("tailpercentage", values)

    def get_tail(self, item_matrix: np.ndarray, count_items: Mapping[int, int]) -> np.ndarray:
        """1 where the item of ``item_matrix`` is a long-tail item, else 0 ([U, K] int64)."""
        item_matrix = np.asarray(item_matrix, dtype=np.int64)
        return self.tail_mask(count_items, int(item_matrix.max(initial=0)) + 1)[item_matrix].astype(np.int64)

    def tail_mask(self, count_items: Mapping[int, int], size: int) -> np.ndarray:
        """Boolean [>= size]: recforge's long-tail rule (``tail_items``) over the items of RecBole's count table.

        ``tail_items`` reads per-id counts, where 0 means "not a training item"; RecBole's table lists its items
        as keys, so a key counted 0 is still one of them (RecBole's tests list such items). With a threshold
        (tail_ratio > 1) those items count 0 <= ratio and are tail items; with a share of the items, the counts
        are shifted by one, which keeps their order and keeps such items listed.
        """
        zero = np.array([item for item, count in count_items.items() if count == 0], dtype=np.int64)
        if self.tail > 1:
            mask = M.tail_items(count_array(count_items, size), self.tail)
            mask[zero] = True
            return mask
        shifted = {item: count + 1 for item, count in count_items.items()}
        return M.tail_items(count_array(shifted, size), self.tail)

    def metric_info(self, values: np.ndarray, valid: torch.Tensor | None = None) -> np.ndarray:
        """Running share over ranks 1..K of tail flags ``values`` [U, K] (``valid``: filler slots excluded)."""
        return M.tail_percentage(*slot_values(values), valid).numpy()


METRIC_CLASSES: tuple[type[AbstractMetric], ...] = (
    Hit,
    MRR,
    MAP,
    Recall,
    NDCG,
    Precision,
    GAUC,
    AUC,
    MAE,
    RMSE,
    LogLoss,
    ItemCoverage,
    AveragePopularity,
    ShannonEntropy,
    GiniIndex,
    TailPercentage,
)

__all__ = [
    "AUC",
    "GAUC",
    "MAE",
    "MAP",
    "METRIC_CLASSES",
    "MRR",
    "NDCG",
    "RMSE",
    "AveragePopularity",
    "GiniIndex",
    "Hit",
    "ItemCoverage",
    "LogLoss",
    "Precision",
    "Recall",
    "ShannonEntropy",
    "TailPercentage",
]
