"""``AbstractTrainer`` and ``Trainer``: RecBole's public contract, with ``fit`` as one short loop.

Customise by subclassing and overriding ``_train_epoch`` (how one epoch trains) or ``_valid_epoch`` (how one
validation scores), or by passing ``callbacks`` (see ``recforge.trainer.events``). ``fit`` itself is never
copied: every specialised trainer reuses it.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from recforge.errors import CheckpointError, TrainingError
from recforge.evaluation.evaluator import TopKEvaluator
from recforge.trainer.checkpoint import load_checkpoint, load_model_state, save_checkpoint
from recforge.trainer.events import BestCheckpoint, Callback, EarlyStopping, EpochLog
from recforge.trainer.optim import build_optimizer
from recforge.utils.progress import progress
from recforge.utils.run_dir import create_run_dir

logger = logging.getLogger("recforge")

Loss = float | tuple[float, ...]


class AbstractTrainer:
    """Base of all trainers: holds ``config`` and ``model``; ``fit`` and ``evaluate`` are abstract."""

    def __init__(self, config: Mapping[str, Any], model: torch.nn.Module) -> None:
        self.config = config
        self.model = model

    def fit(self, train_data):
        raise NotImplementedError("a trainer must implement fit(train_data)")

    def evaluate(self, eval_data):
        raise NotImplementedError("a trainer must implement evaluate(eval_data)")


class Trainer(AbstractTrainer):
    """The trainer for models optimised with one loss (or the sum of several).

    Args:
        config: the run config.
        model: a ``Recommender``; it is moved to ``config["device"]``.
        run_dir: folder for checkpoints (``run_dir/checkpoints/best.pth``); made under checkpoint_dir on first
            save when None.
        callbacks: extra callbacks, run after the built-in ones (early stopping, best checkpoint, epoch log).

    Attributes (RecBole's names): ``start_epoch``, ``cur_step`` (validations since the last improvement),
    ``best_valid_score``, ``best_valid_result``, ``train_loss_dict`` ({epoch: loss}), ``optimizer``
    (None for non-trainable models), ``saved_model_file``.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        model: torch.nn.Module,
        run_dir: str | Path | None = None,
        callbacks: Iterable[Callback] = (),
    ) -> None:
        super().__init__(config, model)
        self.device = torch.device(config["device"])
        self.model.to(self.device)
        self.epochs: int = config["epochs"]
        self.eval_step: int = config["eval_step"]
        self.stopping_step: int = config["stopping_step"]
        self.clip_grad_norm: dict[str, Any] | None = config["clip_grad_norm"]
        self.valid_metric: str = config["valid_metric"].lower()
        self.valid_metric_bigger: bool = config["valid_metric_bigger"]
        self.trainable: bool = getattr(model, "trainable", True)
        self.optimizer = self._build_optimizer() if self.trainable else None
        self.evaluator = TopKEvaluator.from_config(config)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.callbacks: list[Callback] = [EarlyStopping(self.stopping_step), BestCheckpoint(), EpochLog(), *callbacks]

        self.start_epoch = 0
        self.cur_step = 0
        self.best_valid_score = -math.inf if self.valid_metric_bigger else math.inf
        self.best_valid_result: dict[str, float] | None = None
        self.train_loss_dict: dict[int, float] = {}
        self.should_stop = False
        self.verbose = True
        self.saved = True
        self.show_progress = False
        self.validates = False
        self.last_train_seconds = 0.0
        self.last_valid_seconds = 0.0
        self._best_in_memory: dict[str, torch.Tensor] | None = None
        self._has_fit = False

    # -- building blocks ---------------------------------------------------------------------------
    def _build_optimizer(self) -> torch.optim.Optimizer:
        return build_optimizer(
            self.model.parameters(), self.config["learner"], self.config["learning_rate"], self.config["weight_decay"]
        )

    @property
    def checkpoint_dir(self) -> Path:
        if self.run_dir is None:
            self.run_dir = create_run_dir(self.config)
        return self.run_dir / "checkpoints"

    @property
    def saved_model_file(self) -> Path:
        """Where the best checkpoint of this run is (or will be) saved."""
        return self.checkpoint_dir / "best.pth"

    def _emit(self, event: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, event)(self, *args)

    # -- fit ---------------------------------------------------------------------------------------
    def fit(
        self,
        train_data,
        valid_data=None,
        verbose: bool = True,
        saved: bool = True,
        show_progress: bool = False,
        callback_fn=None,
    ) -> tuple[float, dict[str, float] | None]:
        """Train, validating every ``eval_step`` epochs, keeping the best model and stopping early.

        Args:
            train_data: the training loader.
            valid_data: the validation loader, or None (then no validation and no early stopping).
            verbose: log losses, times and validation results.
            saved: save the best model to ``saved_model_file`` (else it is kept in memory).
            show_progress: progress bars for training and validation.
            callback_fn: ``callback_fn(epoch_idx, valid_score)`` after each validation.

        Returns:
            ``(best_valid_score, best_valid_result)``; ``(-1, None)`` without validation data.
        """
        self.verbose, self.saved, self.show_progress = verbose, saved, show_progress
        self.validates = valid_data is not None and self.eval_step > 0
        self.should_stop = False
        self._has_fit = True
        last_epoch = self.epochs if self.trainable else min(self.epochs, 1)
        self._emit("on_fit_start")
        for epoch_idx in range(self.start_epoch, last_epoch):
            self._emit("on_epoch_start", epoch_idx)
            started = time.perf_counter()
            loss = self._train_epoch(train_data, epoch_idx, show_progress=show_progress)
            self.last_train_seconds = time.perf_counter() - started
            self.train_loss_dict[epoch_idx] = sum(loss) if isinstance(loss, tuple) else loss
            self._emit("on_epoch_end", epoch_idx, loss)
            if self.validates and ((epoch_idx + 1) % self.eval_step == 0 or epoch_idx + 1 == last_epoch):
                started = time.perf_counter()
                valid_score, valid_result = self._valid_epoch(valid_data, show_progress=show_progress)
                self.last_valid_seconds = time.perf_counter() - started
                improved = self._track_best(valid_score, valid_result)
                self._emit("on_validation_end", epoch_idx, valid_score, valid_result, improved)
                if callback_fn is not None:
                    callback_fn(epoch_idx, valid_score)
            self.start_epoch = epoch_idx + 1
            if self.should_stop:
                break
        self._emit("on_fit_end")
        if not self.validates:
            return -1, None
        return self.best_valid_score, self.best_valid_result

    def _track_best(self, score: float, result: dict[str, float]) -> bool:
        """RecBole's rule: a score equal to or better than the best is an improvement and resets ``cur_step``."""
        better = score >= self.best_valid_score if self.valid_metric_bigger else score <= self.best_valid_score
        if better:
            self.best_valid_score, self.best_valid_result, self.cur_step = score, result, 0
        else:
            self.cur_step += 1
        return better

    # -- one epoch ---------------------------------------------------------------------------------
    def _train_epoch(self, train_data, epoch_idx: int, loss_func=None, show_progress: bool = False) -> Loss:
        """Train one epoch; returns the summed loss (a tuple of sums when the loss is a tuple)."""
        if not self.trainable:
            self.model.fit_statistics(train_data.dataset)
            return 0.0
        self.model.train()
        loss_func = loss_func or self.model.calculate_loss
        total: Loss | None = None
        batches = progress(train_data, show_progress, f"train {epoch_idx:>3}")
        for batch_idx, interaction in enumerate(batches):
            interaction = interaction.to(self.device)
            self.optimizer.zero_grad(set_to_none=True)
            losses = loss_func(interaction)
            loss = sum(losses) if isinstance(losses, tuple) else losses
            values = tuple(x.item() for x in losses) if isinstance(losses, tuple) else loss.item()
            self._check_finite(values, epoch_idx, batch_idx)
            self._step(loss)
            total = values if total is None else _add(total, values)
        return 0.0 if total is None else total

    def _step(self, loss: torch.Tensor) -> None:
        """Backward, clip, optimizer step."""
        loss.backward()
        if self.clip_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), **self.clip_grad_norm)
        self.optimizer.step()

    @staticmethod
    def _check_finite(values: Loss, epoch_idx: int, batch_idx: int) -> None:
        parts = values if isinstance(values, tuple) else (values,)
        if not all(math.isfinite(v) for v in parts):
            raise TrainingError(
                f"the training loss is {values} at epoch {epoch_idx}, batch {batch_idx}; lower learning_rate, "
                "set clip_grad_norm, or check the data for extreme values"
            )

    def _valid_epoch(self, valid_data, show_progress: bool = False) -> tuple[float, dict[str, float]]:
        """Evaluate on ``valid_data`` with the current weights; returns ``(valid_score, valid_result)``."""
        result = self.evaluate(valid_data, load_best_model=False, show_progress=show_progress)
        return result[self.valid_metric], result

    # -- evaluation --------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(
        self,
        eval_data,
        load_best_model: bool = True,
        model_file: str | Path | None = None,
        show_progress: bool = False,
    ) -> dict[str, float] | None:
        """Evaluate and return ``{metric@k: value}``; None when ``eval_data`` is None.

        Args:
            eval_data: a full-ranking loader.
            load_best_model: evaluate the best model of this run (its saved checkpoint, or the in-memory copy
                when fit ran with ``saved=False``). Without validation, the best model is the last one.
            model_file: a checkpoint to load and evaluate instead (any run's).
            show_progress: a progress bar.
        """
        if eval_data is None:
            return None
        if model_file is not None:
            self._load_weights(model_file)
        elif load_best_model:
            self._load_best()
        self.model.eval()
        self.evaluator.reset()
        for interaction, history, positive_rows, positive_items in progress(eval_data, show_progress, "evaluate"):
            interaction = interaction.to(self.device)
            scores = self.model.full_sort_predict(interaction).view(len(interaction), -1)
            hits, pos_len = self.evaluator.rank(
                scores,
                (history[0].to(self.device), history[1].to(self.device)),
                positive_rows.to(self.device),
                positive_items.to(self.device),
            )
            self.evaluator.add(hits, pos_len)
        return self.evaluator.result()

    def _load_weights(self, path: str | Path) -> dict[str, Any]:
        state = load_checkpoint(path, map_location=self.device)
        load_model_state(self.model, state, path)
        if self.verbose:
            logger.info("loaded model weights from %s", path)
        return state

    def _load_best(self) -> None:
        if self.run_dir is not None and self.saved_model_file.is_file() and self.saved:
            self._load_weights(self.saved_model_file)
        elif self._best_in_memory is not None:
            self.model.load_state_dict(self._best_in_memory)
        elif not self._has_fit:
            raise CheckpointError(
                "evaluate(load_best_model=True) needs a best model, but fit has not run: call fit first, "
                "pass model_file, or use load_best_model=False"
            )

    def keep_best_in_memory(self) -> None:
        """Copy the current weights as the best model (used when fit runs with ``saved=False``)."""
        self._best_in_memory = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}

    # -- checkpoints -------------------------------------------------------------------------------
    def state_dict(self, epoch: int) -> dict[str, Any]:
        """The training state after ``epoch`` (see ``recforge.trainer.checkpoint`` for the layout)."""
        to_dict = getattr(self.config, "to_dict", None)
        return {
            "model_name": type(self.model).__name__,
            "config": to_dict() if to_dict else dict(self.config),
            "epoch": epoch,
            "model": self.model.state_dict(),
            "optimizers": {"main": self.optimizer.state_dict()} if self.optimizer is not None else {},
            "schedulers": {},
            "scaler": None,
            "trainer": {
                "cur_step": self.cur_step,
                "best_valid_score": self.best_valid_score,
                "best_valid_result": copy.deepcopy(self.best_valid_result),
                "train_loss_dict": dict(self.train_loss_dict),
            },
            "callbacks": {f"{i}:{type(c).__name__}": c.state_dict() for i, c in enumerate(self.callbacks)},
        }

    def save_checkpoint(self, kind: str, epoch: int) -> Path:
        """Write ``checkpoints/<kind>.pth`` atomically and return its path."""
        path = save_checkpoint(self.state_dict(epoch), self.checkpoint_dir / f"{kind}.pth")
        if self.verbose:
            logger.info("saved %s checkpoint of epoch %d to %s", kind, epoch, path)
        return path

    def resume_checkpoint(self, resume_file: str | Path) -> None:
        """Load a checkpoint of this model and continue from the epoch after it on the next ``fit``."""
        state = self._load_weights(resume_file)
        for name, optimizer_state in state.get("optimizers", {}).items():
            if name == "main" and self.optimizer is not None:
                self.optimizer.load_state_dict(optimizer_state)
        trainer_state = state.get("trainer", {})
        self.start_epoch = int(state.get("epoch", -1)) + 1
        self.cur_step = int(trainer_state.get("cur_step", 0))
        self.best_valid_score = float(trainer_state.get("best_valid_score", self.best_valid_score))
        self.best_valid_result = trainer_state.get("best_valid_result")
        self.train_loss_dict = {int(k): v for k, v in trainer_state.get("train_loss_dict", {}).items()}
        saved_callbacks = state.get("callbacks", {})
        for i, callback in enumerate(self.callbacks):
            key = f"{i}:{type(callback).__name__}"
            if key in saved_callbacks:
                callback.load_state_dict(saved_callbacks[key])
        logger.info("resumed from %s: training continues at epoch %d", resume_file, self.start_epoch)


def _add(total: Loss, values: Loss) -> Loss:
    if isinstance(total, tuple):
        return tuple(a + b for a, b in zip(total, values, strict=True))
    return total + values
