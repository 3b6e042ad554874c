"""LightGBM (RecBole's ``lightgbm`` model) with RecBole's ``lightgbm.yaml`` keys."""

from __future__ import annotations

from typing import Any

import numpy as np

from recforge.config.types import Int, Key, Mapping_, Optional
from recforge.models.tree.base import FEATURE_KEYS, DecisionTreeRecommender
from recforge.registry import register_model

LOSS_METRICS = ("binary_logloss", "l2", "l1", "rmse", "cross_entropy", "multi_logloss")


@register_model
class LightGBM(DecisionTreeRecommender):
    """A LightGBM booster; ``lgb_num_boost_round`` rounds per epoch added to the same booster (RecBole rebuilds the
    booster from scratch every epoch)."""

    library = "lightgbm"
    trainer = "LightGBMTrainer"
    params_key = "lgb_params"
    hyper_parameters = (
        *FEATURE_KEYS,
        Key(
            "lgb_params",
            Mapping_(),
            {
                "boosting": "gbdt",
                "num_leaves": 90,
                "min_data_in_leaf": 30,
                "max_depth": -1,
                "learning_rate": 0.1,
                "objective": "binary",
                "lambda_l1": 0.1,
                "metric": ["auc", "binary_logloss"],
                "force_row_wise": True,
            },
            "Booster parameters, passed to LightGBM unchanged (verbose -1 unless set).",
        ),
        Key("lgb_num_boost_round", Int(minimum=1), 300, "Boosting rounds per epoch."),
        Key(
            "lgb_early_stopping_rounds",
            Optional(Int(minimum=1)),
            None,
            "Stop when the first metric on the validation rows has not improved for this many rounds.",
        ),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.params: dict[str, Any] = {"verbose": -1, **config["lgb_params"]}
        self.rounds_per_epoch: int = config["lgb_num_boost_round"]
        self.early_stopping_rounds = config["lgb_early_stopping_rounds"]

    def _library_error(self) -> type[BaseException]:
        return self.lib.basic.LightGBMError

    def _probe(self, matrix, labels: np.ndarray) -> None:
        self.lib.train(self.params, self.lib.Dataset(matrix, label=labels, params=self.params), num_boost_round=1)

    def start(self, train, valid) -> None:
        with self.library_errors():
            self._start(train, valid)

    def _start(self, train, valid) -> None:
        lgb = self.lib
        self._dtrain = lgb.Dataset(train[0], label=train[1], params=self.params, free_raw_data=False)
        valid_sets = []
        if valid is not None:
            valid_sets = [lgb.Dataset(valid[0], label=valid[1], reference=self._dtrain, free_raw_data=False)]
        # lgb.train builds the trainable booster (merging the booster to continue, with its scores as the data's
        # initial scores); a callback takes it before the first round, leaving the rounds to ``_update``.
        try:
            lgb.train(
                self.params,
                self._dtrain,
                num_boost_round=1,
                valid_sets=valid_sets,
                valid_names=["valid"] * len(valid_sets),
                init_model=self.booster,
                keep_training_booster=True,
                callbacks=[_take_booster],
            )
        except _BoosterReady as ready:
            self.booster = ready.booster
        self._session_open = True

    def _update(self, round_idx: int) -> None:
        self.booster.update()

    def _valid_score(self, round_idx: int) -> tuple[float, bool]:
        metrics = self.booster.eval_valid()
        if not metrics:
            raise RuntimeError("early stopping needs validation rows")
        if self.verbose_every and round_idx % self.verbose_every == 0:
            self.log_round(round_idx, [(m[1], m[2]) for m in metrics])
        _, _, value, higher = metrics[0]
        return value, higher

    def train_loss(self) -> float:
        metrics = self.booster.eval_train()
        return next((m[2] for m in metrics if m[1] in LOSS_METRICS), metrics[0][2] if metrics else float("nan"))

    def _predict_matrix(self, matrix) -> np.ndarray:
        return self.booster.predict(matrix, num_iteration=-1)

    def _to_bytes(self) -> bytes:
        return self.booster.model_to_string(num_iteration=-1).encode()

    def _from_bytes(self, data: bytes):
        return self.lib.Booster(model_str=data.decode())

    def _rounds_of_loaded(self) -> int:
        return self.booster.current_iteration()

    def _truncate(self, rounds: int) -> None:
        self.booster = self.lib.Booster(model_str=self.booster.model_to_string(num_iteration=rounds))


class _BoosterReady(Exception):
    def __init__(self, booster) -> None:
        super().__init__("booster built")
        self.booster = booster


def _take_booster(env) -> None:
    raise _BoosterReady(env.model)


_take_booster.before_iteration = True  # type: ignore[attr-defined]
