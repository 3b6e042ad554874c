"""``Trainer``: RecBole's trainer contract, its loop and its training step, read top to bottom in this file.

``fit`` is one loop over epochs; an epoch runs the objectives due (``objectives``), a step per batch: autocast
forward -> this rank's share -> backward through the scaled loss -> every ``gradient_accumulation_steps`` batches
unscale -> clip -> optimizer step -> scaler update. The rest is callbacks (``callbacks``; the checkpoint writer
last); a run's state is ``checkpoint.training_state``. Customise by overriding ``_train_epoch`` / ``_valid_epoch``
(RecBole's override points), ``build_objectives`` or ``_build_optimizer``, or by callbacks; never copy ``fit``.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from recforge.evaluation.evaluator import Evaluator
from recforge.registry import register_trainer
from recforge.trainer import batch_losses as losses_of
from recforge.trainer import distributed
from recforge.trainer.abstract import AbstractTrainer
from recforge.trainer.batch_losses import Loss
from recforge.trainer.callbacks import Callback, Checkpoints, builtin_callbacks, callback_keys
from recforge.trainer.checkpoint import (
    attach_loaders,
    load_checkpoint,
    load_model_state,
    restore_training_state,
    training_state,
)
from recforge.trainer.interrupts import interruptible
from recforge.trainer.objectives import Objective
from recforge.trainer.optimizers import build_optimizer
from recforge.trainer.precision import Precision
from recforge.trainer.progress import TrainingProgress, progress_field
from recforge.trainer.run_files import RunFiles, load_best_weights
from recforge.trainer.run_folder import check_checkpoint_dir
from recforge.trainer.schedulers import EpochSchedule
from recforge.trainer.scoring import check_training_data, score_loader
from recforge.utils.log import detach_run_log
from recforge.utils.progress import progress

logger = logging.getLogger("recforge")


@register_trainer
class Trainer(AbstractTrainer):
    """The trainer of models optimised with one loss, several losses, or several alternating objectives.

    Args:
        config: the run config.
        model: a ``Recommender``; it is moved to ``config["device"]``.
        run_dir: the run folder (config.yaml, run.log, history.jsonl, metrics.json, checkpoints/); by default a
            new one under ``checkpoint_dir``, made when ``fit`` first writes.
        callbacks: extra callbacks, run after the built-in ones (``add_callback`` adds more later).
        objectives: what to optimise (default: ``build_objectives()``, the model's ``calculate_loss``).

    Attributes (RecBole's names): ``start_epoch``, ``cur_step`` (validations since the last improvement),
    ``best_valid_score``, ``best_valid_result``, ``best_epoch``, ``train_loss_dict`` ({epoch: total loss}) — the
    fields of ``progress`` —, ``optimizer``, ``saved_model_file``, ``enable_amp``, ``enable_scaler``.
    """

    start_epoch = progress_field("start_epoch")
    cur_step = progress_field("cur_step")
    best_valid_score = progress_field("best_valid_score")
    best_valid_result = progress_field("best_valid_result")
    best_epoch = progress_field("best_epoch")
    train_loss_dict = progress_field("train_loss_dict")

    def __init__(
        self,
        config: Mapping[str, Any],
        model: torch.nn.Module,
        run_dir: str | Path | None = None,
        callbacks: Iterable[Callback] = (),
        objectives: list[Objective] | None = None,
    ) -> None:
        super().__init__(config, model)
        self.device = distributed.setup(torch.device(config["device"]))
        self.model.to(self.device)
        if distributed.is_distributed() and next(model.parameters(), None) is not None:
            self.distributed_model = distributed.wrap(self.model, self.device)
        self._read_config(config)
        self.trainable: bool = getattr(model, "trainable", True)
        self.precision = Precision(config["precision"], self.device, config["enable_scaler"])
        self.enable_amp, self.enable_scaler = self.precision.enabled, self.precision.scaler.is_enabled()
        self.objectives = objectives if objectives is not None else self.build_objectives()
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, EpochSchedule] = {}
        if self.trainable and self.objectives:
            self.optimizer = self._build_optimizer()
        self.evaluator = Evaluator.from_config(config)
        self.files = RunFiles(config, run_dir)
        detach_run_log()
        self.progress = TrainingProgress.starting(self.valid_metric_bigger)
        self.callbacks: list[Callback] = [*builtin_callbacks(self), *callbacks]
        self.checkpoints = Checkpoints()  # runs after every callback: a checkpoint holds their state of the epoch
        self.unclaimed_callback_states: dict[str, Any] = {}  # of a resumed checkpoint, for callbacks added later
        self.pending_loader_state: dict[str, Any] | None = None  # of a resumed checkpoint, for fit's loaders
        self.should_stop, self.verbose, self.saved, self.show_progress, self.validates = False, True, True, False, False
        self.last_losses: dict[str, Loss | None] = {}
        self.epoch_learning_rates: dict[str, float] = {}
        self.last_train_seconds = self.last_valid_seconds = 0.0
        self.train_data = self.valid_data = self.evaluated_data = None  # the loaders of the last fit / evaluate
        self.has_fit = False

    def _read_config(self, config: Mapping[str, Any]) -> None:
        """The config values the loop reads, under RecBole's attribute names."""
        self.epochs: int = config["epochs"]
        self.eval_step: int = config["eval_step"]
        self.stopping_step: int = config["stopping_step"]
        self.clip_grad_norm: dict[str, Any] | None = config["clip_grad_norm"]
        self.accumulation: int = config["gradient_accumulation_steps"]
        self.valid_metric: str = config["valid_metric"].lower()
        self.valid_metric_bigger: bool = config["valid_metric_bigger"]
        self.learner: str = config["learner"]
        self.learning_rate: float = config["learning_rate"]
        self.weight_decay: float = config["weight_decay"]
        self.config_optimizer = {"learner": self.learner, "learning_rate": self.learning_rate}
        self.config_optimizer["weight_decay"] = self.weight_decay

    def build_objectives(self) -> list[Objective]:
        """The objectives of this trainer; the default trains ``model.calculate_loss`` every epoch."""
        return [Objective("loss", loss="calculate_loss")]

    def _build_optimizer(self, **kwargs: Any) -> torch.optim.Optimizer:
        """RecBole's hook: an optimizer from ``params`` (parameters or param groups; default: the model's),
        ``learner``, ``learning_rate`` and ``weight_decay`` (default: the config's). Override it for layer-specific
        learning rates."""
        settings = {k: v for k, v in kwargs.items() if v is not None and k != "params"}
        params = kwargs.get("params")
        return build_optimizer(
            self.model.parameters() if params is None else params, **self.config_optimizer | settings
        )

    @property
    def optimizer(self) -> torch.optim.Optimizer | None:
        """The optimizer (RecBole's attribute; assigning one replaces it and its learning-rate schedule)."""
        return self.optimizers.get("main")

    @optimizer.setter
    def optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizers["main"] = optimizer
        self.schedulers.pop("main", None)
        if self.config["lr_scheduler"]:
            self.schedulers["main"] = EpochSchedule(
                optimizer, self.config["lr_scheduler"], self.epochs, self.valid_metric_bigger
            )

    def add_callback(self, callback: Callback) -> None:
        """Add ``callback`` after the others (a trainer built with RecBole's ``(config, model)`` constructor gets
        its callbacks this way); a state for it in a checkpoint already resumed is restored now."""
        self.callbacks.append(callback)
        key = callback_keys(self.callbacks)[-1]
        if key in self.unclaimed_callback_states:
            callback.load_state_dict(self.unclaimed_callback_states.pop(key))

    def _emit(self, event: str, *args: Any) -> None:
        for callback in (*self.callbacks, self.checkpoints):
            getattr(callback, event)(self, *args)

    # -- the loop ----------------------------------------------------------------------------------
    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False, callback_fn=None):
        """Train, validating every ``eval_step`` epochs, keeping the best model and stopping early.

        Args:
            train_data: the training loader.
            valid_data: the validation loader, or None (then no validation and no early stopping).
            verbose: log losses, times and validation results.
            saved: write the run folder (checkpoints ``last.pth`` every epoch and ``best.pth``, history, metrics,
                config, log, report); with False nothing is written and the best weights are kept in memory.
            show_progress: progress bars for epochs, training batches and validation.
            callback_fn: ``callback_fn(epoch_idx, valid_score)`` after each validation.

        Returns:
            ``(best_valid_score, best_valid_result)``; ``(-1, None)`` without validation data.

        Raises:
            TrainingInterrupted: on Ctrl-C or SIGTERM; its ``checkpoint`` resumes the run exactly.
        """
        scored = valid_data if self.eval_step > 0 else None
        check_training_data(self.model, train_data, scored, self.evaluator.metric_names)
        if not distributed.is_main_process():  # rank 0 alone writes and logs
            verbose, saved, show_progress = False, False, False
        self.verbose, self.saved, self.show_progress = verbose, saved, show_progress
        if saved and self.files.run_folder is None:
            check_checkpoint_dir(self.config["checkpoint_dir"])  # a file there fails now, not after an epoch
        self.validates = valid_data is not None and self.eval_step > 0
        self.should_stop, self.has_fit, self.valid_data = False, True, valid_data
        attach_loaders(self, train_data)
        # A model fitted in one pass (Pop, ItemKNN) is fitted once, whatever epochs says (also epochs: 0).
        last_epoch = self.epochs if self.trainable else self.start_epoch + 1
        with interruptible(self):
            self._emit("on_fit_start")
            for epoch_idx in range(self.start_epoch, last_epoch):
                self.epoch_learning_rates = {n: o.param_groups[0]["lr"] for n, o in self.optimizers.items()}
                self._emit("on_epoch_start", epoch_idx)
                started = time.perf_counter()
                loss = self._call_train_epoch(train_data, epoch_idx, show_progress)
                self.last_train_seconds = time.perf_counter() - started
                self.train_loss_dict[epoch_idx] = sum(loss) if isinstance(loss, tuple) else loss
                self._emit("on_train_end", epoch_idx, loss)
                if self.validates and ((epoch_idx + 1) % self.eval_step == 0 or epoch_idx + 1 == last_epoch):
                    self._validate(valid_data, epoch_idx, callback_fn)
                self.progress.finish_epoch(epoch_idx, validated=self.validates)
                self._emit("on_epoch_end", epoch_idx)
                if self.should_stop:
                    break
            self._emit("on_fit_end")
        return (self.best_valid_score, self.best_valid_result) if self.validates else (-1, None)

    def _call_train_epoch(self, train_data, epoch_idx: int, show_progress: bool) -> Loss:
        """Call ``_train_epoch``, also when a subclass overrides it with RecBole's two-argument signature."""
        parameters = inspect.signature(self._train_epoch).parameters
        if "show_progress" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            return self._train_epoch(train_data, epoch_idx, show_progress=show_progress)
        return self._train_epoch(train_data, epoch_idx)

    def _validate(self, valid_data, epoch_idx: int, callback_fn) -> None:
        started = time.perf_counter()
        valid_score, valid_result = self._valid_epoch(valid_data, show_progress=self.show_progress)
        self.last_valid_seconds = time.perf_counter() - started
        improved = self.progress.record(valid_score, valid_result, self.valid_metric_bigger)
        self._emit("on_validation_end", epoch_idx, valid_score, valid_result, improved)
        if callback_fn is not None:
            callback_fn(epoch_idx, valid_score)

    # -- one epoch, one step -----------------------------------------------------------------------
    def _train_epoch(self, train_data, epoch_idx: int, loss_func=None, show_progress: bool = False) -> Loss:
        """Train one epoch and return its loss.

        With ``loss_func`` (RecBole's argument), one full pass minimises it. Otherwise the objectives due in this
        epoch run in order. Returns the summed loss of a single objective (a tuple of part sums when its loss is a
        tuple), or a tuple with one total per objective (0.0 if not due).
        """
        if not self.trainable:
            self.model.fit_statistics(train_data.dataset)
            self.last_losses = {"loss": 0.0}
            return 0.0
        self.model.train()
        if loss_func is not None:
            objective = Objective("loss", loss=loss_func)
            self.last_losses = {"loss": self._run_objective(objective, train_data, epoch_idx, show_progress)}
            return self.last_losses["loss"]
        self.last_losses = {o.name: None for o in self.objectives}
        for objective in (o for o in self.objectives if o.due(epoch_idx)):
            self.last_losses[objective.name] = self._run_objective(objective, train_data, epoch_idx, show_progress)
        if len(self.objectives) == 1:
            only = self.last_losses[self.objectives[0].name]
            return 0.0 if only is None else only
        return tuple(0.0 if v is None else (sum(v) if isinstance(v, tuple) else v) for v in self.last_losses.values())

    def _run_objective(self, objective: Objective, train_data, epoch_idx: int, show_progress: bool = False) -> Loss:
        """One pass of ``objective`` over its data: a step per batch, the optimizer stepped every
        ``gradient_accumulation_steps`` batches (and after the last). Returns the summed loss (or part sums)."""
        loader = objective.loader(train_data)
        loss_fn, parts = objective.loss_fn(self.model), objective.parts_on(epoch_idx)
        reduction = losses_of.reduction_of(self.model, objective.loss)
        n_batches = len(loader) if hasattr(loader, "__len__") else None
        self.optimizer.zero_grad(set_to_none=True)
        total: Loss | None = None
        pending = False  # gradients accumulated but not stepped yet
        label = f"train {epoch_idx:>3}" + (f" {objective.name}" if len(self.objectives) > 1 else "")
        for batch_idx, batch in enumerate(progress(loader, show_progress, label)):
            batch = batch.to(self.device, non_blocking=self.device.type == "cuda")  # pinned on CUDA
            where = f"{epoch_idx}, batch {batch_idx} (objective {objective.name})"
            divisor = losses_of.group_size(batch_idx, n_batches, self.accumulation)
            values = self._train_batch(loss_fn, batch, parts, reduction, divisor, where)
            total, pending = (values if total is None else losses_of.add(total, values)), True
            if (batch_idx + 1) % self.accumulation == 0 or batch_idx + 1 == n_batches:
                self._optimizer_step()
                pending = False
        if pending:  # a loader of unknown length ended inside an accumulation group
            self._optimizer_step()
        if distributed.is_distributed():  # every rank's share, reduced: the losses of one process
            total = distributed.average_losses([total], self.device)[0]
        return 0.0 if total is None else total

    def _train_batch(self, loss_fn, batch, parts: dict[int, bool], reduction, divisor: int, where: str) -> Loss:
        """Forward and backward of one batch: autocast -> loss (this rank's share of the batch) -> parts that
        count -> backward through the scaled loss / ``divisor`` (the batches of the accumulation group)."""
        self.set_reduce_hook()  # several processes: this backward's gradients are averaged over the ranks
        with self.precision.autocast():
            losses = loss_fn(batch)
        if distributed.is_distributed():  # weighted as one process sums the batch (loaders.rank_slices)
            losses = losses_of.weighted(losses, reduction, getattr(batch, "share", 1.0))
        loss, values = losses_of.combine(losses, parts)
        loss = loss + self.sync_grad_loss()
        losses_of.check_finite(values, where)
        self._backward(loss / divisor if divisor > 1 else loss)
        return values

    def _backward(self, loss: torch.Tensor) -> None:
        """Backward through the (scaled) loss."""
        self.precision.scaler.scale(loss).backward()

    def _optimizer_step(self) -> None:
        """Unscale, clip, step and clear the optimizer's gradients, then update the loss scale."""
        optimizer, scaler = self.optimizer, self.precision.scaler
        if distributed.is_distributed():  # sparse embedding gradients are averaged here, DDP averaged the rest
            sparse = {id(p) for _, p in distributed.sparse_parameters(self.model)}
            params = [p for group in optimizer.param_groups for p in group["params"] if id(p) in sparse]
            if params:
                distributed.average_sparse_gradients(params)
        if self.clip_grad_norm:
            scaler.unscale_(optimizer)
            params = [p for group in optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, **self.clip_grad_norm)
        scaler.step(optimizer)
        optimizer.zero_grad(set_to_none=True)
        self._update_scale()

    def _update_scale(self) -> None:
        """Update the GradScaler's scale, once per optimisation step."""
        self.precision.scaler.update()

    def _check_nan(self, loss: torch.Tensor | float) -> None:
        """RecBole's check: a NaN loss stops training with a TrainingError."""
        losses_of.check_nan(loss)

    def _valid_epoch(self, valid_data, show_progress: bool = False) -> tuple[float, dict[str, float]]:
        """Evaluate on ``valid_data`` with the current weights; returns ``(valid_score, valid_result)``."""
        result = self.evaluate(valid_data, load_best_model=False, show_progress=show_progress)
        return result[self.valid_metric], result

    # -- evaluation --------------------------------------------------------------------------------
    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False):
        """Evaluate and return ``{metric@k: value}``; None when ``eval_data`` is None. Scores are computed in
        full precision.

        Args:
            eval_data: an evaluation loader (full ranking, sampled ranking or labelled).
            load_best_model: first load the best model: ``model_file`` when given, else this run's best
                (its ``best.pth``, or the in-memory copy when fit ran with ``saved=False``; without validation
                the best model is the last one). With False the current weights are evaluated and ``model_file``
                is ignored, as in RecBole.
            model_file: a checkpoint to evaluate (any run's), with ``load_best_model``.
            show_progress: a progress bar.
        """
        if eval_data is None:
            return None
        if load_best_model:
            self._load_weights(model_file) if model_file is not None else load_best_weights(self)
        elif model_file is not None:
            logger.warning("evaluate: model_file %s is ignored because load_best_model is False", model_file)
        merge, show_progress = distributed.shard_evaluation(self.model, eval_data, show_progress)
        label_field = self.config["LABEL_FIELD"]
        result = score_loader(self.model, eval_data, self.evaluator, self.device, label_field, show_progress, merge)
        self.evaluated_data = eval_data
        self._emit("on_evaluate_end", getattr(eval_data, "phase", None), result)
        return result

    # -- checkpoints and the run folder --------------------------------------------------------------
    def resume_checkpoint(self, resume_file: str | Path) -> None:
        """Restore the complete training state of a checkpoint; the next ``fit`` continues exactly where it was.

        From ``<run>/checkpoints/last.pth`` the run continues in ``<run>`` (and evaluates the best model of the
        whole run); from any other checkpoint, such as ``best.pth``, it continues in a new run folder that starts
        with the source run's history up to that epoch. Config keys that differ from the checkpoint's and change
        the run are named in a warning.
        """
        state = self._load_weights(resume_file)
        restore_training_state(self, state, resume_file)
        self.files.resume_from(resume_file, int(state.get("epoch", -1)))
        self._emit("on_checkpoint_load", Path(resume_file), state)
        logger.info("resumed from %s: training continues at epoch %d", resume_file, self.start_epoch)

    def _load_weights(self, path: str | Path) -> dict[str, Any]:
        state = load_checkpoint(path, map_location=self.device)
        load_model_state(self.model, state, path)
        logger.info("loaded model weights from %s (epoch %s)", path, state.get("epoch"))
        return state

    def save_checkpoint(self, kind: str, epoch: int) -> Path:
        """Write the training state after ``epoch`` as ``checkpoints/<kind>.pth`` atomically; returns its path."""
        path = self.files.save(training_state(self, epoch), kind)
        logger.debug("saved %s checkpoint of epoch %d to %s", kind, epoch, path)
        self._emit("on_checkpoint_save", kind, path)
        return path

    def link_checkpoint(self, source: str, target: str) -> Path:
        """Make checkpoint ``target`` the same file as ``source`` (a hard link, or a copy), atomically."""
        path = self.files.link(source, target)
        self._emit("on_checkpoint_save", target, path)
        return path

    def checkpoint_path(self, kind: str) -> Path:
        return self.files.checkpoint(kind)

    run_dir = property(lambda self: self.files.run_dir, doc="The run folder's path (None before a new run writes).")
    folder_ready = property(lambda self: self.files.ready, doc="Whether the run folder exists and this run writes it.")
    saved_model_file = property(lambda self: self.files.checkpoint("best"), doc="Where the best checkpoint is saved.")
    checkpoint_dir = property(
        lambda self: Path(self.config["checkpoint_dir"]).expanduser(), doc="RecBole's: the folder runs are saved under."
    )
