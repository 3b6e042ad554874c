"""``AbstractTrainer`` and ``Trainer``: RecBole's public contract, with ``fit`` as one short loop.

Customise by subclassing and overriding ``_train_epoch`` (how one epoch trains) or ``_valid_epoch`` (how one
validation scores), by declaring objectives (``recforge.trainer.objectives``) or by passing callbacks
(``recforge.trainer.events``). ``fit`` itself is never copied: every specialised trainer reuses it.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from recforge.errors import CheckpointError, TrainingError, TrainingInterrupted
from recforge.evaluation.evaluator import Evaluator
from recforge.trainer.checkpoint import load_checkpoint, load_model_state, save_checkpoint
from recforge.trainer.events import (
    Callback,
    Checkpoints,
    EarlyStopping,
    EpochHooks,
    EpochLog,
    ProgressBar,
    RunLog,
    SchedulerStep,
    TensorBoardLog,
)
from recforge.trainer.objectives import EpochHook, Objective, OptimizerSpec
from recforge.trainer.optim import build_optimizer
from recforge.trainer.precision import Precision
from recforge.trainer.schedulers import EpochSchedule
from recforge.utils.progress import progress
from recforge.utils.rng import capture_rng_state, restore_rng_state
from recforge.utils.run_dir import create_run_dir

logger = logging.getLogger("recforge")

Loss = float | tuple[float, ...]

# Config keys that may differ on resume without changing the run.
RESUME_NEUTRAL_KEYS = frozenset(
    {
        "epochs",
        "show_progress",
        "state",
        "checkpoint_dir",
        "data_path",
        "device",
        "use_gpu",
        "gpu_id",
        "eval_batch_size",
        "metric_decimal_place",
        "loss_decimal_place",
        "tensorboard",
    }
)


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
    """The trainer for models optimised with one loss, several losses, or several alternating objectives.

    Args:
        config: the run config.
        model: a ``Recommender``; it is moved to ``config["device"]``.
        run_dir: folder for checkpoints (``run_dir/checkpoints/{last,best}.pth``) and ``history.jsonl``;
            made under checkpoint_dir on first save when None.
        callbacks: extra callbacks, run after the built-in ones.
        objectives: what to optimise (default: ``build_objectives()``, the model's ``calculate_loss``).
        optimizers: extra optimizer specs (default: ``build_optimizers()``, one "main" optimizer).
        hooks: epoch hooks (default: ``build_hooks()``, none).

    Attributes (RecBole's names): ``start_epoch``, ``cur_step`` (validations since the last improvement),
    ``best_valid_score``, ``best_valid_result``, ``train_loss_dict`` ({epoch: total loss}), ``optimizer``
    (the "main" optimizer; all are in ``optimizers``), ``saved_model_file``.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        model: torch.nn.Module,
        run_dir: str | Path | None = None,
        callbacks: Iterable[Callback] = (),
        objectives: list[Objective] | None = None,
        optimizers: list[OptimizerSpec] | None = None,
        hooks: list[EpochHook] | None = None,
    ) -> None:
        super().__init__(config, model)
        self.device = torch.device(config["device"])
        self.model.to(self.device)
        self.epochs: int = config["epochs"]
        self.eval_step: int = config["eval_step"]
        self.stopping_step: int = config["stopping_step"]
        self.clip_grad_norm: dict[str, Any] | None = config["clip_grad_norm"]
        self.accumulation: int = config["gradient_accumulation_steps"]
        self.valid_metric: str = config["valid_metric"].lower()
        self.valid_metric_bigger: bool = config["valid_metric_bigger"]
        self.trainable: bool = getattr(model, "trainable", True)
        self.precision = Precision(config["precision"], self.device, config["enable_scaler"])
        self.objectives = objectives if objectives is not None else self.build_objectives()
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, EpochSchedule] = {}
        if self.trainable:
            self._build_optimizers(optimizers if optimizers is not None else self.build_optimizers())
        self.evaluator = Evaluator.from_config(config)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        hooks = hooks if hooks is not None else self.build_hooks()
        builtin: list[Callback] = [
            EarlyStopping(self.stopping_step),
            SchedulerStep(),
            Checkpoints(),
            EpochLog(),
            ProgressBar(),
            RunLog(),
        ]
        if hooks:
            builtin.insert(0, EpochHooks(hooks))
        if config["tensorboard"]:
            builtin.append(TensorBoardLog())
        self.callbacks: list[Callback] = [*builtin, *callbacks]

        self.start_epoch = 0
        self.cur_step = 0
        self.best_valid_score = -math.inf if self.valid_metric_bigger else math.inf
        self.best_valid_result: dict[str, float] | None = None
        self.best_epoch: int | None = None
        self.train_loss_dict: dict[int, float] = {}
        self.last_losses: dict[str, Loss | None] = {}
        self.epoch_learning_rates: dict[str, float] = {}
        self.should_stop = False
        self.verbose = True
        self.saved = True
        self.show_progress = False
        self.validates = False
        self.last_train_seconds = 0.0
        self.last_valid_seconds = 0.0
        self._train_data: Any = None
        self._pending_loader_state: dict[str, Any] | None = None
        self._best_in_memory: dict[str, torch.Tensor] | None = None
        self._has_fit = False

    # -- what to optimise (override points for specialised trainers) -------------------------------
    def build_objectives(self) -> list[Objective]:
        """The objectives of this trainer; the default trains ``model.calculate_loss`` every epoch."""
        return [Objective("loss", loss="calculate_loss")]

    def build_optimizers(self) -> list[OptimizerSpec]:
        """Optimizers besides "main" (which owns every parameter the others do not)."""
        return []

    def build_hooks(self) -> list[EpochHook]:
        """Epoch hooks (work done at the start or end of epochs, e.g. a clustering E-step)."""
        return []

    def _build_optimizers(self, specs: list[OptimizerSpec]) -> None:
        claimed: set[int] = set()
        for spec in specs:
            params = list(spec.params(self.model)) if spec.params is not None else list(self.model.parameters())
            claimed.update(id(p) for p in params)
            self.optimizers[spec.name] = self._optimizer(params, spec)
        needed = {objective.optimizer for objective in self.objectives}
        if "main" in needed and "main" not in self.optimizers:
            rest = [p for p in self.model.parameters() if id(p) not in claimed]
            self.optimizers["main"] = self._optimizer(rest, OptimizerSpec("main"))
        missing = needed - set(self.optimizers)
        if missing:
            raise ValueError(f"objectives refer to optimizers {sorted(missing)} that no OptimizerSpec defines")
        if self.config["lr_scheduler"]:
            for name, optimizer in self.optimizers.items():
                self.schedulers[name] = EpochSchedule(
                    optimizer, self.config["lr_scheduler"], self.epochs, self.valid_metric_bigger
                )

    def _optimizer(self, params: list[torch.nn.Parameter], spec: OptimizerSpec) -> torch.optim.Optimizer:
        return build_optimizer(
            params,
            spec.learner or self.config["learner"],
            spec.learning_rate if spec.learning_rate is not None else self.config["learning_rate"],
            spec.weight_decay if spec.weight_decay is not None else self.config["weight_decay"],
        )

    @property
    def optimizer(self) -> torch.optim.Optimizer | None:
        """The "main" optimizer (RecBole's attribute)."""
        return self.optimizers.get("main")

    # -- places ------------------------------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> Path:
        if self.run_dir is None:
            self.run_dir = create_run_dir(self.config)
        return self.run_dir / "checkpoints"

    @property
    def saved_model_file(self) -> Path:
        """Where the best checkpoint of this run is (or will be) saved."""
        return self.checkpoint_dir / "best.pth"

    def checkpoint_path(self, kind: str) -> Path:
        return self.checkpoint_dir / f"{kind}.pth"

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
            saved: write checkpoints (``last.pth`` every epoch, ``best.pth``); else keep the best in memory.
            show_progress: progress bars for epochs, training batches and validation.
            callback_fn: ``callback_fn(epoch_idx, valid_score)`` after each validation.

        Returns:
            ``(best_valid_score, best_valid_result)``; ``(-1, None)`` without validation data.

        Raises:
            TrainingInterrupted: on Ctrl-C or SIGTERM; its ``checkpoint`` resumes the run exactly.
        """
        self.verbose, self.saved, self.show_progress = verbose, saved, show_progress
        self.validates = valid_data is not None and self.eval_step > 0
        self.should_stop = False
        self._has_fit = True
        self._attach_loaders(train_data)
        last_epoch = self.epochs if self.trainable else min(self.epochs, self.start_epoch + 1)
        with self._interruptible():
            self._emit("on_fit_start")
            for epoch_idx in range(self.start_epoch, last_epoch):
                self.epoch_learning_rates = {n: o.param_groups[0]["lr"] for n, o in self.optimizers.items()}
                self._emit("on_epoch_start", epoch_idx)
                started = time.perf_counter()
                loss = self._train_epoch(train_data, epoch_idx, show_progress=show_progress)
                self.last_train_seconds = time.perf_counter() - started
                self.train_loss_dict[epoch_idx] = sum(loss) if isinstance(loss, tuple) else loss
                self._emit("on_train_end", epoch_idx, loss)
                if self.validates and ((epoch_idx + 1) % self.eval_step == 0 or epoch_idx + 1 == last_epoch):
                    self._validate(valid_data, epoch_idx, callback_fn)
                self.start_epoch = epoch_idx + 1
                self._emit("on_epoch_end", epoch_idx)
                if self.should_stop:
                    break
            self._emit("on_fit_end")
        if not self.validates:
            return -1, None
        return self.best_valid_score, self.best_valid_result

    def _validate(self, valid_data, epoch_idx: int, callback_fn) -> None:
        started = time.perf_counter()
        valid_score, valid_result = self._valid_epoch(valid_data, show_progress=self.show_progress)
        self.last_valid_seconds = time.perf_counter() - started
        improved = self._track_best(valid_score, valid_result)
        self._emit("on_validation_end", epoch_idx, valid_score, valid_result, improved)
        if callback_fn is not None:
            callback_fn(epoch_idx, valid_score)

    def _track_best(self, score: float, result: dict[str, float]) -> bool:
        """RecBole's rule: a score equal to or better than the best is an improvement and resets ``cur_step``."""
        better = score >= self.best_valid_score if self.valid_metric_bigger else score <= self.best_valid_score
        if better:
            self.best_valid_score, self.best_valid_result, self.cur_step = score, result, 0
            self.best_epoch = self.start_epoch
        else:
            self.cur_step += 1
        return better

    @contextmanager
    def _interruptible(self) -> Iterator[None]:
        """Turn SIGTERM into KeyboardInterrupt during fit, and either into ``TrainingInterrupted``."""
        previous = None
        if threading.current_thread() is threading.main_thread():

            def on_term(signum, frame):
                raise KeyboardInterrupt(f"signal {signum}")

            previous = signal.signal(signal.SIGTERM, on_term)
        try:
            yield
        except KeyboardInterrupt:
            self._emit("on_fit_end")
            checkpoint = self.checkpoint_path("last") if self.saved and self.trainable else None
            completed = self.start_epoch - 1
            if checkpoint is not None and not checkpoint.is_file():
                checkpoint = None
            raise TrainingInterrupted(completed, checkpoint) from None
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    # -- one epoch ---------------------------------------------------------------------------------
    def _train_epoch(self, train_data, epoch_idx: int, loss_func=None, show_progress: bool = False) -> Loss:
        """Train one epoch and return its loss.

        With ``loss_func`` (RecBole's argument), one full pass minimises it with the "main" optimizer. Otherwise
        the objectives due in this epoch run in order. Returns the summed loss of a single objective (a tuple
        of part sums when its loss is a tuple), or a tuple with one total per objective (0.0 if not due).
        """
        if not self.trainable:
            self.model.fit_statistics(train_data.dataset)
            self.last_losses = {"loss": 0.0}
            return 0.0
        self.model.train()
        if loss_func is not None:
            objective = Objective("loss", loss=loss_func)
            self.last_losses = self._run_group([objective], train_data, epoch_idx, show_progress)
            return self.last_losses["loss"]
        due = [o for o in self.objectives if o.schedule.due(epoch_idx)]
        results: dict[str, Loss | None] = {o.name: None for o in self.objectives}
        for group in _groups(due):
            results.update(self._run_group(group, train_data, epoch_idx, show_progress))
        self.last_losses = results
        if len(self.objectives) == 1:
            only = results[self.objectives[0].name]
            return 0.0 if only is None else only
        return tuple(0.0 if v is None else (sum(v) if isinstance(v, tuple) else v) for v in results.values())

    def _run_group(self, group: list[Objective], train_data, epoch_idx: int, show_progress: bool) -> dict[str, Loss]:
        """Run objectives over the batches of the first one's data, interleaved per batch."""
        loader = group[0].loader(train_data)
        limit = min((o.steps for o in group if o.steps is not None), default=None)
        n_batches = len(loader) if hasattr(loader, "__len__") else None
        if limit is not None and n_batches is not None:
            n_batches = min(n_batches, limit)
        loss_fns = [o.loss_fn(self.model) for o in group]
        part_masks = [self._part_mask(o, epoch_idx) for o in group]
        totals: list[Loss | None] = [None] * len(group)
        pending: set[str] = set()  # optimizers holding gradients that have not been stepped yet
        for name in {o.optimizer for o in group}:
            self.optimizers[name].zero_grad(set_to_none=True)
        label = f"train {epoch_idx:>3}" + (f" {group[0].name}" if len(self.objectives) > 1 else "")
        for batch_idx, batch in enumerate(progress(loader, show_progress, label)):
            if limit is not None and batch_idx >= limit:
                break
            batch = batch.to(self.device)
            divisor = self._accumulation_divisor(batch_idx, n_batches)
            step_now = self._step_due(batch_idx, n_batches)
            for i, objective in enumerate(group):
                with self.precision.autocast():
                    losses = loss_fns[i](batch)
                loss, values = self._combine(losses, part_masks[i])
                self._check_finite(values, epoch_idx, batch_idx, objective.name)
                self._backward(loss / divisor if divisor > 1 else loss)
                pending.add(objective.optimizer)
                if step_now:
                    self._optimizer_step(objective.optimizer)
                    pending.discard(objective.optimizer)
                totals[i] = values if totals[i] is None else _add(totals[i], values)
        for name in sorted(pending):  # a loader of unknown length ended inside an accumulation group
            self._optimizer_step(name)
        return {o.name: (0.0 if totals[i] is None else totals[i]) for i, o in enumerate(group)}

    @staticmethod
    def _part_mask(objective: Objective, epoch_idx: int) -> dict[int, bool]:
        return {index: schedule.due(epoch_idx) for index, schedule in objective.parts.items()}

    @staticmethod
    def _combine(losses, mask: dict[int, bool]) -> tuple[torch.Tensor, Loss]:
        """The loss to minimise and the values to report; parts switched off by ``mask`` count as 0."""
        if not isinstance(losses, tuple):
            return losses, losses.item()
        n = len(losses)
        active = [mask.get(i, mask.get(i - n, True)) for i in range(n)]
        loss = sum(part for part, on in zip(losses, active, strict=True) if on)
        return loss, tuple(part.item() if on else 0.0 for part, on in zip(losses, active, strict=True))

    def _accumulation_divisor(self, batch_idx: int, n_batches: int | None) -> int:
        """How many batches share the optimizer step that ``batch_idx`` belongs to."""
        if self.accumulation == 1:
            return 1
        if n_batches is None:
            return self.accumulation
        start = batch_idx - batch_idx % self.accumulation
        return min(self.accumulation, n_batches - start)

    def _step_due(self, batch_idx: int, n_batches: int | None) -> bool:
        return (batch_idx + 1) % self.accumulation == 0 or (n_batches is not None and batch_idx + 1 == n_batches)

    def _backward(self, loss: torch.Tensor) -> None:
        """Backward through the (scaled) loss."""
        self.precision.scaler.scale(loss).backward()

    def _optimizer_step(self, name: str) -> None:
        """Unscale, clip, step and update the scaler, then clear the gradients of optimizer ``name``."""
        optimizer = self.optimizers[name]
        scaler = self.precision.scaler
        if self.clip_grad_norm:
            scaler.unscale_(optimizer)
            params = [p for group in optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, **self.clip_grad_norm)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)

    @staticmethod
    def _check_finite(values: Loss, epoch_idx: int, batch_idx: int, name: str) -> None:
        parts = values if isinstance(values, tuple) else (values,)
        if not all(math.isfinite(v) for v in parts):
            raise TrainingError(
                f"the training loss is {values} at epoch {epoch_idx}, batch {batch_idx} (objective {name}); lower "
                "learning_rate, set clip_grad_norm, or check the data for extreme values"
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
        """Evaluate and return ``{metric@k: value}``; None when ``eval_data`` is None. Scores are computed in
        full precision.

        Args:
            eval_data: a full-ranking loader.
            load_best_model: evaluate the best model of this run (its ``best.pth``, or the in-memory copy when
                fit ran with ``saved=False``). Without validation, the best model is the last one.
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
        self.evaluator.set_item_counts(getattr(eval_data, "item_counts", None))
        mode = getattr(eval_data, "mode", "full")
        for batch in progress(eval_data, show_progress, "evaluate"):
            if mode == "labeled":
                self._evaluate_labelled(batch[0])
            elif mode == "sampled":
                self._evaluate_sampled(*batch)
            else:
                self._evaluate_full(*batch)
        return self.evaluator.result()

    def _evaluate_full(self, interaction, history, positive_rows, positive_items) -> None:
        interaction = interaction.to(self.device)
        scores = self.model.full_sort_predict(interaction).view(len(interaction), -1)
        history = (history[0].to(self.device), history[1].to(self.device))
        self.evaluator.add_ranking(scores, history, positive_rows.to(self.device), positive_items.to(self.device))

    def _evaluate_sampled(self, pairs, rows, positive_rows, positive_items) -> None:
        pairs = pairs.to(self.device)
        rows = rows.to(self.device)
        n_users = int(rows.max()) + 1 if len(rows) else 0
        scores = torch.full((n_users, self.model.n_items), -torch.inf, device=self.device)
        scores[rows, pairs[self.model.ITEM_ID]] = self.model.predict(pairs).float()
        self.evaluator.add_ranking(scores, None, positive_rows.to(self.device), positive_items.to(self.device))

    def _evaluate_labelled(self, interaction) -> None:
        interaction = interaction.to(self.device)
        scores = self.model.predict(interaction)
        self.evaluator.add_labelled(scores, interaction[self.config["LABEL_FIELD"]], interaction[self.model.USER_ID])

    def _load_weights(self, path: str | Path) -> dict[str, Any]:
        state = load_checkpoint(path, map_location=self.device)
        load_model_state(self.model, state, path)
        if self.verbose:
            logger.info("loaded model weights from %s", path)
        return state

    def _load_best(self) -> None:
        epoch = f"epoch {self.best_epoch}" if self.best_epoch is not None else "the last epoch"
        if self.saved and self.run_dir is not None and self.saved_model_file.is_file():
            self._load_weights(self.saved_model_file)
            logger.info("evaluating the best model of this run (%s, %s)", epoch, self.saved_model_file)
        elif self._best_in_memory is not None:
            self.model.load_state_dict(self._best_in_memory)
            logger.info("evaluating the best model of this run (%s, kept in memory: saved=False)", epoch)
        elif self._has_fit:
            logger.info("evaluating the current weights (no best model was kept)")
        else:
            raise CheckpointError(
                "evaluate(load_best_model=True) needs a best model, but fit has not run: call fit first, "
                "pass model_file, or use load_best_model=False"
            )

    def keep_best_in_memory(self) -> None:
        """Copy the current weights as the best model (used when fit runs with ``saved=False``)."""
        self._best_in_memory = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}

    # -- checkpoints -------------------------------------------------------------------------------
    def _attach_loaders(self, train_data) -> None:
        self._train_data = train_data
        if self._pending_loader_state is not None:
            for name, loader in self._loaders().items():
                if name in self._pending_loader_state:
                    loader.load_state_dict(self._pending_loader_state[name])
            self._pending_loader_state = None

    def _loaders(self) -> dict[str, Any]:
        """The stateful loaders of the current training data, by name ("train" and its views)."""
        loaders: dict[str, Any] = {}
        if self._train_data is not None and hasattr(self._train_data, "state_dict"):
            loaders["train"] = self._train_data
        for name, view in (getattr(self._train_data, "views", None) or {}).items():
            if hasattr(view, "state_dict") and view is not self._train_data:
                loaders[name] = view
        return loaders

    def state_dict(self, epoch: int) -> dict[str, Any]:
        """The complete training state after ``epoch`` (see ``recforge.trainer.checkpoint`` for the layout)."""
        to_dict = getattr(self.config, "to_dict", None)
        return {
            "model_name": type(self.model).__name__,
            "config": to_dict() if to_dict else dict(self.config),
            "epoch": epoch,
            "model": self.model.state_dict(),
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "schedulers": {name: s.state_dict() for name, s in self.schedulers.items()},
            "scaler": self.precision.scaler.state_dict(),
            "trainer": {
                "cur_step": self.cur_step,
                "best_valid_score": self.best_valid_score,
                "best_valid_result": copy.deepcopy(self.best_valid_result),
                "best_epoch": self.best_epoch,
                "train_loss_dict": dict(self.train_loss_dict),
            },
            "loaders": {name: loader.state_dict() for name, loader in self._loaders().items()},
            "rng": capture_rng_state(),
            "callbacks": {f"{i}:{type(c).__name__}": c.state_dict() for i, c in enumerate(self.callbacks)},
        }

    def save_checkpoint(self, kind: str, epoch: int) -> Path:
        """Write ``checkpoints/<kind>.pth`` atomically and return its path."""
        path = save_checkpoint(self.state_dict(epoch), self.checkpoint_path(kind))
        if self.verbose:
            logger.debug("saved %s checkpoint of epoch %d to %s", kind, epoch, path)
        self._emit("on_checkpoint_save", kind, path)
        return path

    def link_checkpoint(self, source: str, target: str) -> Path:
        """Make checkpoint ``target`` the same file as ``source`` (a hard link, or a copy), atomically."""
        src, dst = self.checkpoint_path(source), self.checkpoint_path(target)
        tmp = dst.with_name(f".{dst.name}.link")
        tmp.unlink(missing_ok=True)
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
        self._emit("on_checkpoint_save", target, dst)
        return dst

    def resume_checkpoint(self, resume_file: str | Path) -> None:
        """Restore the complete training state of a checkpoint; the next ``fit`` continues exactly where it was
        (with ``last.pth``; ``best.pth`` continues from the best epoch). Config keys that differ from the
        checkpoint's and change the run are named in a warning."""
        state = self._load_weights(resume_file)
        self._warn_config_changes(state.get("config", {}), resume_file)
        for name, optimizer_state in state.get("optimizers", {}).items():
            if name in self.optimizers:
                self.optimizers[name].load_state_dict(optimizer_state)
        for name, scheduler_state in state.get("schedulers", {}).items():
            if name in self.schedulers:
                self.schedulers[name].load_state_dict(scheduler_state)
        if state.get("scaler"):
            self.precision.scaler.load_state_dict(state["scaler"])
        trainer_state = state.get("trainer", {})
        self.start_epoch = int(state.get("epoch", -1)) + 1
        self.cur_step = int(trainer_state.get("cur_step", 0))
        self.best_valid_score = float(trainer_state.get("best_valid_score", self.best_valid_score))
        self.best_valid_result = trainer_state.get("best_valid_result")
        self.best_epoch = trainer_state.get("best_epoch")
        self.train_loss_dict = {int(k): v for k, v in trainer_state.get("train_loss_dict", {}).items()}
        saved_callbacks = state.get("callbacks", {})
        for i, callback in enumerate(self.callbacks):
            key = f"{i}:{type(callback).__name__}"
            if key in saved_callbacks:
                callback.load_state_dict(saved_callbacks[key])
        self._pending_loader_state = state.get("loaders") or None
        if state.get("rng"):
            restore_rng_state(state["rng"])
        self._emit("on_checkpoint_load", Path(resume_file), state)
        logger.info("resumed from %s: training continues at epoch %d", resume_file, self.start_epoch)

    def _warn_config_changes(self, saved: Mapping[str, Any], path: str | Path) -> None:
        to_dict = getattr(self.config, "to_dict", None)
        current = to_dict() if to_dict else dict(self.config)
        changed = sorted(
            k for k in set(saved) | set(current) if k not in RESUME_NEUTRAL_KEYS and saved.get(k) != current.get(k)
        )
        if changed:
            details = "; ".join(f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in changed)
            logger.warning(
                "resuming %s with a different config, so the run will not match the original: %s", path, details
            )


def _groups(objectives: list[Objective]) -> list[list[Objective]]:
    """Objectives in order; consecutive ones with the same non-empty group form one interleaved group."""
    groups: list[list[Objective]] = []
    for objective in objectives:
        if objective.group is not None and groups and groups[-1][0].group == objective.group:
            groups[-1].append(objective)
        else:
            groups.append([objective])
    return groups


def _add(total: Loss, values: Loss) -> Loss:
    if isinstance(total, tuple):
        return tuple(a + b for a, b in zip(total, values, strict=True))
    return total + values
