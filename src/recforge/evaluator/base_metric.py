"""RecBole's ``recbole.evaluator.base_metric``: the metric base classes, computing through ``recforge.evaluation``.

Every value comes from recforge's metric functions (``recforge.evaluation.metrics``); these classes only move
RecBole's inputs (numpy arrays, a ``DataStruct``) into them and the results back. Results are not rounded to
``metric_decimal_place``: recforge rounds for display only (docs/architecture.md, row "metrics").
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

import numpy as np
import torch

from recforge.evaluation import metrics as M


class EvaluatorType(Enum):
    """RecBole's ``recbole.utils.EvaluatorType``: whether a metric reads rankings (RANKING) or scored rows (VALUE)."""

    RANKING = 1
    VALUE = 2


def user_mean(values: np.ndarray | torch.Tensor, k: int) -> float:
    """Mean over users of column ``k - 1`` of per-user values [U, K], as recforge's evaluator averages (float64,
    one contiguous column; 0.0 without users)."""
    column = torch.as_tensor(values)[:, k - 1].to(torch.float64).contiguous()
    return float(column.mean()) if len(column) else 0.0


def topk_means(metric: str, values: np.ndarray | torch.Tensor, topk: list[int]) -> dict[str, float]:
    """``{"metric@k": mean over users of metric@k}`` for every k of ``topk``."""
    return {M.metric_key(metric, k): user_mean(values, k) for k in topk}


def recommended_slots(dataobject: Any, k: int) -> np.ndarray:
    """Item ids in the first ``k`` slots of ``rec.items``, less the filler slots that ``rec.valid`` marks
    (recforge's Collector stores it: users with fewer than k candidates; docs/architecture.md, "a top-k slot
    without a candidate")."""
    items = dataobject.get("rec.items").numpy()[:, :k]
    if "rec.valid" in dataobject:
        return items[dataobject.get("rec.valid").numpy()[:, :k]]
    return items


def valid_slots(dataobject: Any) -> torch.Tensor | None:
    """``rec.valid`` [U, K] when the collector stored it, else None (every slot is a recommendation)."""
    return dataobject.get("rec.valid") if "rec.valid" in dataobject else None


def item_counts(item_matrix: np.ndarray, num_items: int) -> np.ndarray:
    """How often each item id appears in ``item_matrix`` ([max(num_items, largest id + 1)] int64)."""
    return np.bincount(np.asarray(item_matrix, dtype=np.int64).ravel(), minlength=num_items)


def count_array(count_table: Mapping[int, int], size: int) -> np.ndarray:
    """RecBole's ``{item id: training interactions}`` table as recforge's per-id count array, at least ``size``
    long (ids missing from the table: 0)."""
    keys = np.fromiter(count_table.keys(), dtype=np.int64, count=len(count_table))
    counts = np.zeros(max(size, int(keys.max()) + 1 if len(keys) else 0), dtype=np.int64)
    counts[keys] = np.fromiter(count_table.values(), dtype=np.int64, count=len(count_table))
    return counts


def slot_values(values: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(slot ids [U, K], flat values): lets recforge's per-item functions (``average_popularity``,
    ``tail_percentage``) read per-slot values that RecBole has already looked up (``get_pop``, ``get_tail``)."""
    flat = torch.as_tensor(np.asarray(values)).reshape(-1)
    return torch.arange(len(flat)).view(np.shape(values)), flat


class AbstractMetric:
    """RecBole's base of all metrics: ``Metric(config)``, then ``calculate_metric(dataobject) -> {key: value}``.

    Subclasses set ``metric_type`` (EvaluatorType), ``metric_need`` (the DataStruct keys they read) and
    ``smaller`` (True when lower is better).
    """

    smaller = False
    metric_type: EvaluatorType
    metric_need: list[str]

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.decimal_place = config["metric_decimal_place"]

    def calculate_metric(self, dataobject: Any) -> dict[str, float]:
        """``{metric key: value}`` from a ``DataStruct`` holding ``metric_need``."""
        raise NotImplementedError("Method [calculate_metric] should be implemented.")


class TopkMetric(AbstractMetric):
    """RecBole's base of the ranking @k metrics (Hit, MRR, MAP, Recall, NDCG, Precision), reading ``rec.topk``:
    [U, max(topk) + 1], each user's hit flags in rank order then the user's number of positives.

    ``name`` is the recforge metric (``recforge.evaluation.metrics.METRICS``) that computes the values.
    """

    metric_type = EvaluatorType.RANKING
    metric_need = ["rec.topk"]  # noqa: RUF012 - RecBole's class attribute
    name: str

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.topk = list(config["topk"])

    def used_info(self, dataobject: Any) -> tuple[np.ndarray, np.ndarray]:
        """(hit flags [U, max(topk)] bool, positives per user [U])."""
        rec_mat = dataobject.get("rec.topk")
        topk_idx, pos_len = torch.split(rec_mat, [max(self.topk), 1], dim=1)
        return topk_idx.to(torch.bool).numpy(), pos_len.squeeze(-1).numpy()

    def calculate_metric(self, dataobject: Any) -> dict[str, float]:
        pos_index, pos_len = self.used_info(dataobject)
        return self.topk_result(self.name, self.metric_info(pos_index, pos_len))

    def topk_result(self, metric: str, value: np.ndarray) -> dict[str, float]:
        """``{"metric@k": mean over users of column k - 1 of value}`` for the configured cut-offs."""
        return topk_means(metric, value, self.topk)

    def metric_info(self, pos_index: np.ndarray, pos_len: np.ndarray | None = None) -> np.ndarray:
        """Per-user values [U, K] float64 at every cut-off 1..K, from hit flags ``pos_index`` [U, K] and the users'
        positives ``pos_len`` [U] (unused by Hit, MRR and Precision; by default the hits in the list)."""
        hits = torch.as_tensor(np.asarray(pos_index)).to(torch.bool)
        if pos_len is None:
            lengths = hits.sum(dim=1)
        else:
            lengths = torch.as_tensor(np.asarray(pos_len)).reshape(-1).to(torch.int64)
        return M.METRICS[self.name].fn(hits, lengths).numpy()


class LossMetric(AbstractMetric):
    """RecBole's base of the value metrics (AUC, MAE, RMSE, LogLoss), reading ``rec.score`` and ``data.label``."""

    metric_type = EvaluatorType.VALUE
    metric_need = ["rec.score", "data.label"]  # noqa: RUF012 - RecBole's class attribute
    name: str

    def used_info(self, dataobject: Any) -> tuple[np.ndarray, np.ndarray]:
        """(predicted scores [R] float32, labels [R] float64): the dtypes recforge's evaluator keeps."""
        preds = dataobject.get("rec.score").squeeze(-1).float()
        trues = dataobject.get("data.label").squeeze(-1).double()
        return preds.numpy(), trues.numpy()

    def output_metric(self, metric: str, dataobject: Any) -> dict[str, float]:
        preds, trues = self.used_info(dataobject)
        return {metric: self.metric_info(preds, trues)}

    def calculate_metric(self, dataobject: Any) -> dict[str, float]:
        return self.output_metric(self.name, dataobject)

    def metric_info(self, preds: np.ndarray, trues: np.ndarray) -> float:
        """The metric of predicted scores ``preds`` [R] against labels ``trues`` [R]."""
        return M.METRICS[self.name].fn(np.asarray(preds), np.asarray(trues))


__all__ = ["AbstractMetric", "EvaluatorType", "LossMetric", "TopkMetric"]
