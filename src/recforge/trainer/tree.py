"""Trainers of the boosted-tree models (RecBole's DecisionTreeTrainer, XGBoostTrainer, LightGBMTrainer).

``Trainer.fit`` runs unchanged: an epoch adds ``*_num_boost_round`` rounds to the same booster (``epochs`` x rounds
in all, unless stopped early), so validation every ``eval_step`` epochs, ``stopping_step``, best / last
checkpoints, exact resume, progress bars and the run folder work as for any model. The epoch's loss is the
training loss the library reports. With ``xgb_early_stopping_rounds`` / ``lgb_early_stopping_rounds`` the
validation rows are scored after every round and boosting stops, cut back to its best round, when the
library's metric has not improved for that many rounds (``BoosterEarlyStopping``, saved in checkpoints).

Training rows are the training split's labelled interactions, or, without a label column, its interactions
(label 1) plus the negatives the training loader draws for one epoch (label 0), drawn once from its seeded
generator.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from recforge.errors import ConfigError, DataError
from recforge.models.tree.base import EarlyStop
from recforge.registry import register_trainer
from recforge.trainer.callbacks import Callback
from recforge.trainer.objectives import Objective
from recforge.trainer.trainer import Trainer

logger = logging.getLogger("recforge")


class BoosterEarlyStopping(Callback):
    """Holds the round-level early-stopping state of a boosting run (so checkpoints carry it)."""

    def __init__(self, rounds: int | None) -> None:
        self.stop = EarlyStop(rounds)

    def state_dict(self) -> dict[str, Any]:
        return self.stop.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stop.load_state_dict(state)


def labelled_rows(train_data, encoder, label_field: str) -> tuple[Any, np.ndarray]:
    """(CSR feature rows, labels) of a training loader's split (see the module docstring)."""
    dataset = train_data.dataset
    if label_field in dataset.inter_feat:
        columns = dataset.inter_feat
        return encoder.matrix(columns), np.asarray(columns[label_field], dtype=np.float32)
    if getattr(train_data, "sampler", None) is None:
        raise DataError(
            f"boosted trees learn from labels, but the training split has no {label_field!r} column and no negative "
            "sampling; set threshold (e.g. {rating: 4}) or train_neg_sample_args"
        )
    batches = [batch.loaded() for batch in train_data]
    columns = {name: np.concatenate([b[name].numpy() for b in batches]) for name in batches[0]}
    return encoder.matrix(columns), columns[label_field].astype(np.float32)


@register_trainer
class DecisionTreeTrainer(Trainer):
    """Boosts the model's booster a block of rounds per epoch (see the module docstring)."""

    def __init__(self, config, model, **kwargs) -> None:
        super().__init__(config, model, **kwargs)
        self.booster_stopping = BoosterEarlyStopping(getattr(model, "early_stopping_rounds", None))
        self.callbacks.append(self.booster_stopping)

    def build_objectives(self) -> list[Objective]:
        return []  # no gradient steps

    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False, callback_fn=None):
        self.model.check_params(train_data.dataset)  # a refused parameter: one line, before the run folder exists
        return super().fit(train_data, valid_data, verbose, saved, show_progress, callback_fn)

    def _validation_rows(self, encoder) -> tuple[Any, np.ndarray] | None:
        if self.booster_stopping.stop.rounds is None:
            return None
        label = self.config["LABEL_FIELD"]
        valid = self.valid_data
        if valid is None or label not in valid.dataset.inter_feat:
            raise ConfigError(
                "early stopping of the booster (xgb_early_stopping_rounds / lgb_early_stopping_rounds) scores "
                f"labelled validation rows, but there are none (no validation split or no {label!r} column); set "
                "threshold (e.g. {rating: 4}) and a validation split, or unset the early-stopping rounds"
            )
        columns = valid.dataset.inter_feat
        return encoder.matrix(columns), np.asarray(columns[label], dtype=np.float32)

    def _train_epoch(self, train_data, epoch_idx: int, loss_func=None, show_progress: bool = False) -> float:
        model = self.model
        stop = self.booster_stopping.stop
        if stop.stopped:  # resumed after the booster stopped early: nothing left to boost
            self.should_stop = True
            self.last_losses = {"loss": model.last_train_loss}
            return model.last_train_loss
        if not model.session_open:
            label = self.config["LABEL_FIELD"]
            model.start(labelled_rows(train_data, model.encoder, label), self._validation_rows(model.encoder))
        if model.boost(model.rounds_per_epoch, stop if stop.rounds is not None else None):
            logger.info(
                "booster early stopping: no improvement for %d rounds; kept %d rounds (best validation metric %.6f)",
                stop.rounds,
                stop.best_round + 1,
                stop.best_score,
            )
            self.should_stop = True
        self.last_losses = {"loss": model.last_train_loss}
        return model.last_train_loss


@register_trainer
class XGBoostTrainer(DecisionTreeTrainer):
    """DecisionTreeTrainer for ``XGBoost`` (RecBole's name)."""


@register_trainer
class LightGBMTrainer(DecisionTreeTrainer):
    """DecisionTreeTrainer for ``LightGBM`` (RecBole's name)."""
