"""RecBole's ``recbole.evaluator.register``: the metric tables and ``Register``.

- ``metrics_dict``: metric name (lower case) -> metric class.
- ``metric_information``: name -> the DataStruct keys the metric reads (``metric_need``).
- ``metric_types``: name -> ``EvaluatorType``.
- ``smaller_metrics``: the names of the metrics where lower is better.

They list the same 16 metrics as recforge's registry (``recforge.evaluation.metrics.METRICS``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from recforge.evaluator.base_metric import AbstractMetric, EvaluatorType
from recforge.evaluator.metrics import METRIC_CLASSES

metrics_dict: dict[str, type[AbstractMetric]] = {cls.__name__.lower(): cls for cls in METRIC_CLASSES}
metric_information: dict[str, list[str]] = {name: cls.metric_need for name, cls in metrics_dict.items()}
metric_types: dict[str, EvaluatorType] = {name: cls.metric_type for name, cls in metrics_dict.items()}
smaller_metrics: list[str] = [name for name, cls in metrics_dict.items() if cls.smaller]


class Register:
    """Which DataStruct keys the configured ``metrics`` need: ``need("rec.topk")`` is True when one of them reads
    it. Unknown metric names raise KeyError."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self.metrics = [metric.lower() for metric in config["metrics"]]
        self._needed = {info for metric in self.metrics for info in metric_information[metric]}

    def has_metric(self, metric: str) -> bool:
        """Whether ``metric`` (any case) is one of the configured metrics."""
        return metric.lower() in self.metrics

    def need(self, key: str) -> bool:
        """Whether a configured metric reads the DataStruct key ``key``."""
        return key in self._needed


__all__ = ["Register", "metric_information", "metric_types", "metrics_dict", "smaller_metrics"]
