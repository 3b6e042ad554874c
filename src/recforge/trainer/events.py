"""Events of ``Trainer.fit`` and the callbacks that react to them.

``fit`` emits, in this order::

    on_fit_start
    for each epoch:
        on_epoch_start(epoch)
        on_epoch_end(epoch, loss)                       loss: float, or a tuple for several losses
        on_validation_end(epoch, score, result, improved)   only on validation epochs
    on_fit_end

Callbacks run in list order. A callback may keep state that goes into checkpoints (``state_dict`` /
``load_state_dict``) and may stop training by setting ``trainer.should_stop = True``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recforge.trainer.trainer import Trainer

logger = logging.getLogger("recforge")


class Callback:
    """Base class: override the hooks you need. Every hook receives the trainer first."""

    def on_fit_start(self, trainer: Trainer) -> None:
        pass

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        pass

    def on_epoch_end(self, trainer: Trainer, epoch: int, loss: float | tuple[float, ...]) -> None:
        pass

    def on_validation_end(
        self, trainer: Trainer, epoch: int, score: float, result: dict[str, float], improved: bool
    ) -> None:
        pass

    def on_fit_end(self, trainer: Trainer) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class EarlyStopping(Callback):
    """Stop when more than ``stopping_step`` validations in a row did not improve (RecBole's rule)."""

    def __init__(self, stopping_step: int) -> None:
        self.stopping_step = stopping_step

    def on_validation_end(self, trainer, epoch, score, result, improved) -> None:
        if trainer.cur_step > self.stopping_step:
            trainer.should_stop = True
            if trainer.verbose:
                best_epoch = epoch - trainer.cur_step * max(trainer.eval_step, 1)
                logger.info(
                    "early stopping after epoch %d; best valid score %.6f at epoch %d",
                    epoch,
                    trainer.best_valid_score,
                    best_epoch,
                )


class BestCheckpoint(Callback):
    """Save ``best.pth`` whenever validation improves; without validation data, after every epoch."""

    def on_epoch_end(self, trainer, epoch, loss) -> None:
        if trainer.saved and not trainer.validates:
            trainer.save_checkpoint("best", epoch)

    def on_validation_end(self, trainer, epoch, score, result, improved) -> None:
        if improved:
            if trainer.saved:
                trainer.save_checkpoint("best", epoch)
            else:
                trainer.keep_best_in_memory()


class EpochLog(Callback):
    """Log each epoch's loss and time, and each validation's score and metrics (when ``verbose``)."""

    def on_epoch_end(self, trainer, epoch, loss) -> None:
        if trainer.verbose:
            places = trainer.config["loss_decimal_place"]
            if isinstance(loss, tuple):
                shown = ", ".join(f"train_loss{i + 1}: {v:.{places}f}" for i, v in enumerate(loss))
            else:
                shown = f"train loss: {loss:.{places}f}"
            logger.info("epoch %d training [time: %.2fs, %s]", epoch, trainer.last_train_seconds, shown)

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
