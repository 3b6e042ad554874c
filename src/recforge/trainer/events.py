"""Events of ``Trainer.fit`` and the callbacks that react to them.

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
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from recforge.trainer.objectives import EpochHook
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
            trainer.keep_best_in_memory()

    def on_epoch_end(self, trainer, epoch) -> None:
        improved = self._improved or not trainer.validates
        self._improved = False
        if not trainer.validates:
            trainer.best_epoch = epoch
        if not trainer.saved:
            if not trainer.validates:
                trainer.keep_best_in_memory()
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


class EpochLog(Callback):
    """Log each epoch's losses, learning rate and time, and each validation's score and metrics."""

    def on_train_end(self, trainer, epoch, loss) -> None:
        if not trainer.verbose:
            return
        places = trainer.config["loss_decimal_place"]
        losses = trainer.last_losses
        if len(losses) > 1 or any(isinstance(v, tuple) for v in losses.values()):
            shown = ", ".join(f"{name}: {_fmt(value, places)}" for name, value in losses.items())
        else:
            shown = f"train loss: {_fmt(loss, places)}"
        rates = trainer.epoch_learning_rates
        if len(rates) == 1:
            lr = f"{next(iter(rates.values())):.3g}"
        else:
            lr = ", ".join(f"{name} {value:.3g}" for name, value in rates.items())
        logger.info(
            "epoch %d training [time: %.2fs, %s%s]",
            epoch,
            trainer.last_train_seconds,
            shown,
            f", lr: {lr}" if lr else "",
        )

    def on_validation_end(self, trainer, epoch, score, result, improved) -> None:
        if trainer.verbose:
            places = trainer.config["metric_decimal_place"]
            logger.info(
                "epoch %d evaluating [time: %.2fs, valid_score: %.*f]%s",
                epoch,
                trainer.last_valid_seconds,
                places,
                score,
                " *" if improved else "",
            )
            logger.info("valid result: %s", "  ".join(f"{k}: {v:.{places}f}" for k, v in result.items()))


def _fmt(value: float | tuple[float, ...] | None, places: int) -> str:
    if value is None:
        return "-"
    if isinstance(value, tuple):
        return "(" + ", ".join(f"{v:.{places}f}" for v in value) + ")"
    return f"{value:.{places}f}"


class ProgressBar(Callback):
    """An epoch bar with the latest loss and validation score (batch bars come from ``show_progress``)."""

    def __init__(self) -> None:
        self.bar = None

    def on_fit_start(self, trainer) -> None:
        if trainer.show_progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=trainer.epochs, initial=trainer.start_epoch, desc="epochs", disable=None, dynamic_ncols=True
            )

    def on_train_end(self, trainer, epoch, loss) -> None:
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{trainer.train_loss_dict[epoch]:.4f}", refresh=False)

    def on_validation_end(self, trainer, epoch, score, result, improved) -> None:
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{trainer.train_loss_dict[epoch]:.4f}", valid=f"{score:.4f}", refresh=False)

    def on_epoch_end(self, trainer, epoch) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def on_fit_end(self, trainer) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class RunLog(Callback):
    """One JSON line per epoch in the run folder's ``history.jsonl``: losses by objective, learning rates, times,
    validation score and result."""

    def __init__(self) -> None:
        self.record: dict[str, Any] = {}

    def on_epoch_start(self, trainer, epoch) -> None:
        self.record = {"epoch": epoch}

    def on_train_end(self, trainer, epoch, loss) -> None:
        self.record.update(
            loss=trainer.train_loss_dict[epoch],
            losses={k: list(v) if isinstance(v, tuple) else v for k, v in trainer.last_losses.items()},
            lr=dict(trainer.epoch_learning_rates),
            train_seconds=round(trainer.last_train_seconds, 6),
        )

    def on_validation_end(self, trainer, epoch, score, result, improved) -> None:
        self.record.update(
            valid_score=score,
            valid_result=result,
            improved=improved,
            valid_seconds=round(trainer.last_valid_seconds, 6),
        )

    def on_epoch_end(self, trainer, epoch) -> None:
        if trainer.saved:
            self.record["time"] = time.strftime("%Y-%m-%dT%H:%M:%S")
            trainer.folder().append_history(self.record)


class RunSummary(Callback):
    """``metrics.json`` in the run folder: the best validation result and the loss history when fit ends, the
    test result when a test split is evaluated."""

    def on_fit_end(self, trainer) -> None:
        if not trainer.saved or not trainer.folder_ready:
            return
        config = trainer.config
        trainer.folder().update_metrics(
            model=config["model"],
            dataset=config["dataset"],
            best_valid_score=trainer.best_valid_score if trainer.validates else -1,
            valid_score_bigger=trainer.valid_metric_bigger,
            best_valid_result=trainer.best_valid_result,
            run_dir=str(trainer.run_dir),
            epochs_run=trainer.start_epoch,
            best_epoch=trainer.best_epoch,
            train_loss={str(k): v for k, v in trainer.train_loss_dict.items()},
        )

    def on_evaluate_end(self, trainer, phase, result) -> None:
        if phase == "test" and trainer.saved and trainer.folder_ready:
            trainer.folder().update_metrics(test_result=result)


class TensorBoardLog(Callback):
    """Scalars for TensorBoard in the run folder's ``tensorboard/``: losses, learning rates, validation metrics,
    and, when the test split is evaluated, the test metrics with the run's hyper-parameters. Nothing is written
    when fit runs with ``saved=False``."""

    def __init__(self) -> None:
        self.writer = None

    def _open(self, trainer) -> bool:
        if self.writer is None and trainer.saved:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(trainer.folder().path / "tensorboard"))
        return self.writer is not None

    def on_fit_start(self, trainer) -> None:
        self._open(trainer)

    def on_train_end(self, trainer, epoch, loss) -> None:
        if not self._open(trainer):
            return
        self.writer.add_scalar("train/loss", trainer.train_loss_dict[epoch], epoch)
        if len(trainer.last_losses) > 1:
            for name, value in trainer.last_losses.items():
                if value is not None:
                    total = sum(value) if isinstance(value, tuple) else value
                    self.writer.add_scalar(f"train/loss_{name}", total, epoch)
        for name, lr in trainer.epoch_learning_rates.items():
            self.writer.add_scalar(f"lr/{name}", lr, epoch)

    def on_validation_end(self, trainer, epoch, score, result, improved) -> None:
        if self._open(trainer):
            for key, value in result.items():
                self.writer.add_scalar(f"valid/{key}", value, epoch)

    def on_evaluate_end(self, trainer, phase, result) -> None:
        if phase != "test" or not trainer.has_fit or not self._open(trainer):
            return
        for key, value in result.items():
            self.writer.add_scalar(f"test/{key}", value, trainer.best_epoch or 0)
        params = {
            k: v if isinstance(v, (int, float, str, bool)) else str(v)
            for k, v in trainer.config.items()
            if v is not None
        }
        self.writer.add_hparams(params, {f"hparam/test/{k}": v for k, v in result.items()}, run_name="hparams")
        self.writer.flush()

    def on_fit_end(self, trainer) -> None:
        if self.writer is not None:
            self.writer.flush()


class EpochHooks(Callback):
    """Run ``EpochHook``s: "start" ones before an epoch trains, "end" ones after it trained."""

    def __init__(self, hooks: list[EpochHook]) -> None:
        self.hooks = hooks

    def _run(self, trainer, epoch: int, when: str) -> None:
        for hook in self.hooks:
            if hook.when != when or not hook.schedule.due(epoch):
                continue
            if hook.no_grad:
                was_training = trainer.model.training
                trainer.model.eval()
                with torch.no_grad():
                    hook.fn(trainer, epoch)
                trainer.model.train(was_training)
            else:
                hook.fn(trainer, epoch)

    def on_epoch_start(self, trainer, epoch) -> None:
        self._run(trainer, epoch, "start")

    def on_train_end(self, trainer, epoch, loss) -> None:
        self._run(trainer, epoch, "end")
