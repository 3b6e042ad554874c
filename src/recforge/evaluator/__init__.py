"""RecBole's ``recbole.evaluator`` path (metric classes, ``Collector``, ``Evaluator``) as thin adapters over
``recforge.evaluation``, so that code and tests written for RecBole run with only the package name changed::

    from recforge.evaluator import metrics_dict, Collector, Evaluator
    from recforge.evaluator.register import metrics_dict, metric_information, smaller_metrics

Values are recforge's (same definitions, top-k tie rule, masks), unrounded; see docs/architecture.md,
"Deliberate differences from RecBole".
"""

from recforge.evaluator.base_metric import AbstractMetric, EvaluatorType, LossMetric, TopkMetric
from recforge.evaluator.collector import Collector, DataStruct
from recforge.evaluator.evaluator import Evaluator
from recforge.evaluator.metrics import (
    AUC,
    GAUC,
    MAE,
    MAP,
    MRR,
    NDCG,
    RMSE,
    AveragePopularity,
    GiniIndex,
    Hit,
    ItemCoverage,
    LogLoss,
    Precision,
    Recall,
    ShannonEntropy,
    TailPercentage,
)
from recforge.evaluator.register import Register, metric_information, metric_types, metrics_dict, smaller_metrics

__all__ = [
    "AUC",
    "GAUC",
    "MAE",
    "MAP",
    "MRR",
    "NDCG",
    "RMSE",
    "AbstractMetric",
    "AveragePopularity",
    "Collector",
    "DataStruct",
    "Evaluator",
    "EvaluatorType",
    "GiniIndex",
    "Hit",
    "ItemCoverage",
    "LogLoss",
    "LossMetric",
    "Precision",
    "Recall",
    "Register",
    "ShannonEntropy",
    "TailPercentage",
    "TopkMetric",
    "metric_information",
    "metric_types",
    "metrics_dict",
    "smaller_metrics",
]
