"""Pretraining stages (RecBole's PretrainTrainer and S3RecTrainer): no copy of ``fit``.

A pretraining stage is a ``fit`` of ``pretrain_epochs`` epochs without validation; a callback saves the weights
every ``save_step`` epochs and after the last one as ``<checkpoint_dir>/<model>-<dataset>-<epoch>.pth`` (RecBole's
name). Such a file is a complete recforge checkpoint: a later stage loads its weights (``pre_model_path``), and
``resume_checkpoint`` continues the pretraining from it exactly, like any run's ``last.pth``. Which stage a run is
comes from the model's ``train_stage``; the stages a trainer pretrains in are its ``pretrain_stages``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from recforge.errors import ConfigError
from recforge.registry import register_trainer
from recforge.trainer import distributed
from recforge.trainer.callbacks import Callback
from recforge.trainer.checkpoint import save_checkpoint, training_state
from recforge.trainer.trainer import Trainer

logger = logging.getLogger("recforge")


def pretrained_file(config: Any, epoch: int) -> Path:
    """Where the weights after ``epoch`` epochs (counted from 1) of a pretraining stage are saved (RecBole's
    ``<checkpoint_dir>/<model>-<dataset>-<epoch>.pth``)."""
    folder = Path(config["checkpoint_dir"]).expanduser()
    return folder / f"{config['model']}-{config['dataset']}-{epoch}.pth"


class PretrainedWeights(Callback):
    """Save the weights every ``save_step`` epochs and after the last epoch of a pretraining stage (the main
    process only; the file is written atomically)."""

    state_key = "PretrainedWeights"

    def __init__(self, save_step: int) -> None:
        self.save_step = save_step

    def on_epoch_end(self, trainer, epoch) -> None:
        done = epoch + 1
        last = done == trainer.epochs or trainer.should_stop
        if (done % self.save_step == 0 or last) and distributed.is_main_process():
            path = pretrained_file(trainer.config, done)
            path.parent.mkdir(parents=True, exist_ok=True)
            trainer.saved_pretrained_file = save_checkpoint(training_state(trainer, epoch), path)
            if trainer.verbose:
                logger.info("saved the pretrained weights of epoch %d to %s", done, path)


@register_trainer
class PretrainTrainer(Trainer):
    """RecBole's PretrainTrainer: ``pretrain(train_data)`` trains ``pretrain_epochs`` epochs without validation,
    saving the weights every ``save_step`` epochs and at the end (``PretrainedWeights``). ``fit`` pretrains when
    the model's ``train_stage`` is one of ``pretrain_stages`` and trains as ``Trainer`` otherwise.

    Attributes (RecBole's): ``pretrain_epochs``, ``save_step``; ``saved_pretrained_file`` is the last file saved.
    """

    pretrain_stages: tuple[str, ...] = ("pretrain",)

    def __init__(self, config, model, **kwargs) -> None:
        stage = getattr(model, "train_stage", None) in self.pretrain_stages
        self.pretrain_epochs: int | None = (
            _positive(config, "pretrain_epochs") if stage else config.get("pretrain_epochs")
        )
        self.save_step: int | None = _positive(config, "save_step") if stage else config.get("save_step")
        self.saved_pretrained_file: Path | None = None
        super().__init__(config, model, **kwargs)
        if self.pretraining:
            self.callbacks.append(PretrainedWeights(self.save_step))

    @property
    def pretraining(self) -> bool:
        """Whether this run is a pretraining stage (the model's ``train_stage`` is one of ``pretrain_stages``)."""
        return getattr(self.model, "train_stage", None) in self.pretrain_stages

    def _read_config(self, config) -> None:
        super()._read_config(config)
        if self.pretraining:  # a pretraining stage's epochs are pretrain_epochs (schedules follow them)
            self.epochs = self.pretrain_epochs

    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False, callback_fn=None):
        """Pretrain (``pretrain``; ``valid_data`` is not used) or train as ``Trainer.fit``, by the stage."""
        if self.pretraining:
            return self.pretrain(train_data, verbose, show_progress, saved=saved)
        return super().fit(train_data, valid_data, verbose, saved, show_progress, callback_fn)

    def pretrain(self, train_data, verbose: bool = True, show_progress: bool = False, saved: bool = True):
        """Train ``pretrain_epochs`` epochs of the model's loss without validation; returns ``(-1, None)`` (no
        validation score). The pretrained files are written whatever ``saved`` says (they are the stage's
        product); ``saved`` decides about the run folder, as for ``fit``."""
        if not self.pretraining:
            raise ConfigError(
                f"config key 'train_stage': {type(self).__name__}.pretrain needs a model in a pretraining stage "
                f"({', '.join(self.pretrain_stages)}); {type(self.model).__name__} is in "
                f"{getattr(self.model, 'train_stage', None)!r}"
            )
        return Trainer.fit(self, train_data, None, verbose, saved, show_progress)


@register_trainer
class S3RecTrainer(PretrainTrainer):
    """RecBole's S3RecTrainer: ``train_stage: pretrain`` runs S3Rec's four self-supervised objectives (its
    ``calculate_loss`` in that stage) as a pretraining stage; ``finetune`` trains and validates like ``Trainer``
    from the weights of ``pre_model_path`` (loaded by the model)."""


def _positive(config, key: str) -> int:
    value = config.get(key) if hasattr(config, "get") else config[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"config key {key!r}: a pretraining stage needs a positive integer, got {value!r}")
    return value
