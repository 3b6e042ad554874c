"""Evaluation: ranking metrics from one top-k pass."""

from recforge.evaluation.evaluator import TopKEvaluator
from recforge.evaluation.metrics import RANKING_METRICS

__all__ = ["RANKING_METRICS", "TopKEvaluator"]
