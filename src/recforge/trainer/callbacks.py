"""Callbacks: the events of ``Trainer.fit`` and the built-in callbacks that react to them (the one way to add work
to the loop).

``fit`` emits, in this order::

    on_fit_start
    for each epoch:
        on_epoch_start(epoch)
        on_train_end(epoch, loss)                            after the training part; loss: float or tuple
        on_validation_end(epoch, score, result, improved)    only on validation epochs
        on_epoch_end(epoch)                                  the epoch is complete (start_epoch == epoch + 1)
    on_fit_end

and, whenever a checkpoint is written or read, ``on_checkpoint_save(kind, path)`` /
``on_checkpoint_load(path, state)``; after every ``evaluate``, ``on_evaluate_end(phase, result)`` (phase "valid",
"test" or None, from the loader). Callbacks run in list order; the checkpoint writer (``Checkpoints``) runs after
all of them, so a checkpoint holds every callback's state of its epoch. A callback may keep state that goes into
checkpoints (``state_dict`` / ``load_state_dict``, keyed by ``state_key`` or its class name) and may stop training
with ``trainer.should_stop = True``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from recforge.models.base import Recommender

if TYPE_CHECKING:
    from recforge.trainer.trainer import Trainer

logger = logging.getLogger("recforge")


class Callback:
    """Base class: override the hooks you need. Every hook receives the trainer first."""

    def on_fit_start(self, trainer: Trainer) -> None:
        pass

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        pass

    def on_train_end(self, trainer: Trainer, epoch: int, loss: float | tuple[float, ...]) -> None:
        pass

    def on_validation_end(
        self, trainer: Trainer, epoch: int, score: float, result: dict[str, float], improved: bool
    ) -> None:
        pass

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> None:
        pass

    def on_checkpoint_save(self, trainer: Trainer, kind: str, path: Path) -> None:
        pass

    def on_checkpoint_load(self, trainer: Trainer, path: Path, state: dict[str, Any]) -> None:
        pass

    def on_fit_end(self, trainer: Trainer) -> None:
        pass

    def on_evaluate_end(self, trainer: Trainer, phase: str | None, result: dict[str, float]) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def callback_keys(callbacks: list[Callback]) -> list[str]:
    """The names under which checkpoints keep the callbacks' states: a callback's ``state_key`` attribute when it
    has one, else its class name; the second of two equal names gets "#2", and so on. Names do not depend on
    positions, so a callback added or removed on resume (``tensorboard`` toggled) moves no other's state."""
    keys, seen = [], {}
    for callback in callbacks:
        name = getattr(callback, "state_key", None) or type(callback).__qualname__
        seen[name] = seen.get(name, 0) + 1
        keys.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return keys


def stable_callback_keys(states: dict[str, Any]) -> dict[str, Any]:
    """Callback states by ``callback_keys`` names, also from checkpoints that keyed them "<position>:<class>"."""
    out: dict[str, Any] = {}
    for key, state in states.items():
        position, colon, name = key.partition(":")
        if colon and position.isdigit():
            key = name if name not in out else f"{name}#{sum(k.split('#')[0] == name for k in out) + 1}"
        out[key] = state
    return out


class EarlyStopping(Callback):
    """Stop when more than ``stopping_step`` validations in a row did not improve (RecBole's rule); the message
    comes at the end of the epoch, after its evaluation line."""

    def __init__(self, stopping_step: int) -> None:
        self.stopping_step = stopping_step

    def on_validation_end(self, trainer, epoch, score, result, improved) -> None:
        if trainer.cur_step > self.stopping_step:
            trainer.should_stop = True

    def on_epoch_end(self, trainer, epoch) -> None:
        if trainer.should_stop and trainer.cur_step > self.stopping_step and trainer.verbose:
            logger.info(
                "early stopping after epoch %d: %d validations without improvement; best %.6f at epoch %s",
                epoch,
                trainer.cur_step,
                trainer.best_valid_score,
                trainer.best_epoch,
            )


class Checkpoints(Callback):
    """``last.pth`` when fit starts and after every epoch; ``best.pth`` for every epoch that improved (every
    epoch when there is no validation). With ``saved=False`` the best weights are kept in memory instead."""

    def __init__(self) -> None:
        self._improved = False
        self.saved_epoch: int | None = None  # the epoch of the last last.pth this fit wrote

    def on_fit_start(self, trainer) -> None:
        if trainer.saved and trainer.trainable:
            trainer.save_checkpoint("last", trainer.start_epoch - 1)
            self.saved_epoch = trainer.start_epoch - 1
            if trainer.best_epoch is not None and trainer.best_epoch == trainer.start_epoch - 1:
                trainer.link_checkpoint("last", "best")  # resumed from the best epoch itself

    def on_validation_end(self, trainer, epoch, score, result, improved) -> None:
        self._improved = improved
        if improved and not trainer.saved:
            trainer.files.keep_in_memory(trainer.model)

    def on_epoch_end(self, trainer, epoch) -> None:
        improved = self._improved or not trainer.validates  # without validation the last epoch is the best
        self._improved = False
        if not trainer.saved:
            if not trainer.validates:
                trainer.files.keep_in_memory(trainer.model)
            return
        trainer.save_checkpoint("last", epoch)
        self.saved_epoch = epoch
        if improved:
            trainer.link_checkpoint("last", "best")


class SchedulerStep(Callback):
    """Advance the learning-rate schedules: after each epoch's training, and (plateau) after validation."""

    def on_train_end(self, trainer, epoch, loss) -> None:
        for schedule in trainer.schedulers.values():
            schedule.after_epoch()

    def on_validation_end(self, trainer, epoch, score, result, improved) -> None:
        for schedule in trainer.schedulers.values():
            schedule.after_validation(score)


@contextmanager
def without_gradients(model: torch.nn.Module) -> Iterator[None]:
    """Work between epochs: ``model`` in evaluation mode (no dropout) under ``torch.no_grad()``, then back."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


class ModelEpochStart(Callback):
    """Call the model's own ``on_epoch_start(epoch)`` (e.g. SGL's graph views), without gradients, before each
    epoch trains."""

    def on_epoch_start(self, trainer, epoch) -> None:
        with without_gradients(trainer.model):
            trainer.model.on_epoch_start(epoch)


def builtin_callbacks(trainer: Trainer) -> list[Callback]:
    """The callbacks every Trainer runs, in order (the checkpoint writer, ``Checkpoints``, runs after all)."""
    from recforge.trainer.run_logs import EpochLog, ProgressBar, RunLog, RunSummary, TensorBoardLog
    from recforge.trainer.run_report import RunReport
    from recforge.trainer.serving_file import ServingWriter

    callbacks = [
        EarlyStopping(trainer.stopping_step),
        SchedulerStep(),
        RunLog(),  # the epoch's history line before its last.pth: a kill between leaves a line resume drops
        EpochLog(),
        ProgressBar(),
        RunSummary(),
        ServingWriter(),  # serving.npz, for recforge.load
        RunReport(),  # report.html
    ]
    if getattr(type(trainer.model), "on_epoch_start", Recommender.on_epoch_start) is not Recommender.on_epoch_start:
        callbacks.insert(0, ModelEpochStart())
    if trainer.config["tensorboard"]:
        callbacks.append(TensorBoardLog())
    return callbacks
