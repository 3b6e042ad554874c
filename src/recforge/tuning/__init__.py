"""Hyper-parameter search over recforge runs with Optuna (``recforge tune``).

``tune`` (``recforge.tuning.study``) runs a study; ``read_space`` (``recforge.tuning.space``) reads a search
space from YAML or RecBole's hyper.test; every trial is a normal run scored on validation only
(``recforge.tuning.trial``); the best trial's test result is computed once, after the search
(``recforge.tuning.holdout``); ``recforge.tuning.results`` writes and formats what a study leaves.
"""

from recforge.tuning.space import SearchSpace, SearchSpaceError, read_space
from recforge.tuning.study import tune
from recforge.tuning.trial import TuningError

__all__ = ["SearchSpace", "SearchSpaceError", "TuningError", "read_space", "tune"]
