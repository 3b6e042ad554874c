"""RecBole's ``recbole.evaluator.evaluator``: ``Evaluator(config).evaluate(data_struct)``."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from recforge.evaluator.base_metric import AbstractMetric
from recforge.evaluator.collector import DataStruct
from recforge.evaluator.register import metrics_dict


class Evaluator:
    """Computes the configured ``metrics`` from a ``DataStruct`` (a ``Collector``'s ``get_data_struct()``)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self.metrics = [metric.lower() for metric in config["metrics"]]
        self.metric_class: dict[str, AbstractMetric] = {name: metrics_dict[name](config) for name in self.metrics}

    def evaluate(self, dataobject: DataStruct) -> OrderedDict[str, float]:
        """``{metric key: value}`` (``recall@10``, ``gauc``...), the metrics in config order, values unrounded."""
        result: OrderedDict[str, float] = OrderedDict()
        for name in self.metrics:
            result.update(self.metric_class[name].calculate_metric(dataobject))
        return result


__all__ = ["Evaluator"]
