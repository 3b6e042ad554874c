"""XGBoost (RecBole's ``xgboost`` model) with RecBole's ``xgboost.yaml`` keys."""

from __future__ import annotations

from typing import Any

import numpy as np

from recforge.config.types import Anything, Bool, Int, Key, Mapping_, Optional, Str
from recforge.models.tree.base import FEATURE_KEYS, DecisionTreeRecommender
from recforge.registry import register_model

# xgboost.callback.EarlyStopping's list: metrics whose larger values are better.
MAXIMIZED = ("auc", "aucpr", "pre", "pre@", "map", "ndcg", "auc@", "aucpr@", "map@", "ndcg@")
LOSS_METRICS = ("logloss", "rmse", "mae", "error")


@register_model
class XGBoost(DecisionTreeRecommender):
    """An XGBoost booster; ``xgb_num_boost_round`` rounds per epoch added to the same booster."""

    library = "xgboost"
    params_key = "xgb_params"
    trainer = "XGBoostTrainer"
    hyper_parameters = (
        *FEATURE_KEYS,
        Key(
            "xgb_params",
            Mapping_(),
            {
                "booster": "gbtree",
                "objective": "binary:logistic",
                "eval_metric": ["auc", "logloss"],
                "max_depth": 3,
                "eta": 1,
                "seed": 2020,
            },
            "Booster parameters, passed to XGBoost unchanged.",
        ),
        Key("xgb_num_boost_round", Int(minimum=1), 100, "Boosting rounds per epoch."),
        Key(
            "xgb_early_stopping_rounds",
            Optional(Int(minimum=1)),
            None,
            "Stop when the last eval_metric on the validation rows has not improved for this many rounds.",
        ),
        Key(
            "lgb_early_stopping_rounds",
            Optional(Int(minimum=1)),
            None,
            "The name RecBole's xgboost.yaml uses for xgb_early_stopping_rounds (read when that is not set).",
        ),
        Key("xgb_model", Optional(Str()), None, "A saved XGBoost model file to continue boosting from."),
        Key("xgb_silent", Optional(Bool()), None, "Accepted for RecBole files; XGBoost >= 1.0 ignores it."),
        Key("xgb_nthread", Optional(Int(minimum=-1)), None, "Threads used to build the DMatrix (None: all)."),
        Key(
            "xgb_verbose_eval",
            Anything(),
            50,
            "Log the validation metric every N rounds when it is computed (early stopping); false: never.",
        ),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.params: dict[str, Any] = dict(config["xgb_params"])
        self.rounds_per_epoch: int = config["xgb_num_boost_round"]
        self.early_stopping_rounds = config["xgb_early_stopping_rounds"] or config["lgb_early_stopping_rounds"]
        verbose = config["xgb_verbose_eval"]
        self.verbose_every = int(verbose) if verbose not in (None, False) and int(verbose) > 0 else 0
        if config["xgb_model"]:
            self.booster = self.lib.Booster(model_file=config["xgb_model"])
            self.rounds_done = self._rounds_of_loaded()

    def _matrix(self, rows: tuple[Any, np.ndarray]):
        matrix, labels = rows
        return self.lib.DMatrix(matrix, label=labels, nthread=self.config["xgb_nthread"])

    def _library_error(self) -> type[BaseException]:
        return self.lib.core.XGBoostError

    def _probe(self, matrix, labels: np.ndarray) -> None:
        rows = self._matrix((matrix, labels))
        self.lib.Booster(self.params, [rows]).update(rows, 0)

    def start(self, train, valid) -> None:
        with self.library_errors():
            self._dtrain = self._matrix(train)
            self._dvalid = self._matrix(valid) if valid is not None else None
            cache = [self._dtrain] + ([self._dvalid] if self._dvalid is not None else [])
            self.booster = self.lib.Booster(self.params, cache, model_file=self.booster)
            self.booster.save_config()  # XGBoost checks its parameters when configured (lazily, at the first round)
        self._session_open = True

    def _update(self, round_idx: int) -> None:
        self.booster.update(self._dtrain, round_idx)

    def _evaluate(self, data, name: str, round_idx: int) -> list[tuple[str, float]]:
        text = self.booster.eval_set([(data, name)], round_idx)
        pairs = [item.split(":") for item in text.split("\t")[1:]]
        return [(metric.split("-", 1)[1], float(value)) for metric, value in pairs]

    def _valid_score(self, round_idx: int) -> tuple[float, bool]:
        if self._dvalid is None:
            raise RuntimeError("early stopping needs validation rows")
        metrics = self._evaluate(self._dvalid, "valid", round_idx)
        if self.verbose_every and round_idx % self.verbose_every == 0:
            self.log_round(round_idx, metrics)
        name, value = metrics[-1]
        return value, name.startswith(MAXIMIZED)

    def train_loss(self) -> float:
        metrics = self._evaluate(self._dtrain, "train", max(self.rounds_done - 1, 0))
        return next((v for n, v in metrics if n.startswith(LOSS_METRICS)), metrics[0][1])

    def _predict_matrix(self, matrix) -> np.ndarray:
        return self.booster.inplace_predict(matrix)

    def _to_bytes(self) -> bytes:
        return bytes(self.booster.save_raw("ubj"))

    def _from_bytes(self, data: bytes):
        return self.lib.Booster(model_file=bytearray(data))

    def _rounds_of_loaded(self) -> int:
        return self.booster.num_boosted_rounds()

    def _truncate(self, rounds: int) -> None:
        self.booster = self.booster[:rounds]
