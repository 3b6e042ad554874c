"""Evaluation: ranking (full or sampled) and labelled metrics from one pass."""

from recforge.evaluation.evaluator import Evaluator
from recforge.evaluation.metrics import METRICS, RANKING_METRICS

__all__ = ["METRICS", "RANKING_METRICS", "Evaluator"]
