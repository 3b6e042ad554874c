"""What a run records, as callbacks: the epoch log, the progress bar, ``history.jsonl``, ``metrics.json`` and
TensorBoard scalars (``recforge.trainer.callbacks`` has the events)."""

from __future__ import annotations

import logging
import time
from typing import Any

from recforge.trainer.callbacks import Callback

logger = logging.getLogger("recforge")


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
            trainer.files.folder().append_history(self.record)


class RunSummary(Callback):
    """``metrics.json`` in the run folder: the best validation result and the loss history when fit ends, the
    test result when a test split is evaluated."""

    def on_fit_end(self, trainer) -> None:
        if not trainer.saved or not trainer.folder_ready:
            return
        config = trainer.config
        trainer.files.folder().update_metrics(
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
            trainer.files.folder().update_metrics(test_result=result)


class TensorBoardLog(Callback):
    """Scalars for TensorBoard in the run folder's ``tensorboard/``: losses, learning rates, validation metrics,
    and, when the test split is evaluated, the test metrics with the run's hyper-parameters. Nothing is written
    when fit runs with ``saved=False``."""

    def __init__(self) -> None:
        self.writer = None

    def _open(self, trainer) -> bool:
        if self.writer is None and trainer.saved:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(trainer.files.folder().path / "tensorboard"))
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
