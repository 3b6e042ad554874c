"""``AbstractTrainer`` and ``Trainer``: RecBole's public contract, with ``fit`` as one short loop.

Customise by subclassing and overriding ``_train_epoch`` (how one epoch trains) or ``_valid_epoch`` (how one
validation scores), by declaring objectives (``recforge.trainer.objectives``) or by passing callbacks
(``recforge.trainer.events``). ``fit`` itself is never copied: every specialised trainer reuses it. The training
step lives in ``recforge.trainer.optimization``, checkpoints and resume in ``recforge.trainer.state``.
"""

from __future__ import annotations

import inspect
import logging
import math
import signal
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from recforge.errors import CheckpointError, TrainingInterrupted
from recforge.evaluation.evaluator import Evaluator
from recforge.models.base import Recommender
from recforge.registry import register_trainer
from recforge.trainer import distributed
from recforge.trainer.abstract import AbstractTrainer
from recforge.trainer.events import (
    Callback,
    Checkpoints,
    EarlyStopping,
    EpochHooks,
    EpochLog,
    ProgressBar,
    RunLog,
    RunSummary,
    SchedulerStep,
    TensorBoardLog,
    callback_keys,
)
from recforge.trainer.objectives import EpochHook, Objective, OptimizerSpec
from recforge.trainer.optimization import Loss, Optimization, groups_of
from recforge.trainer.precision import Precision
from recforge.trainer.run_folder import RunFolder, check_checkpoint_dir
from recforge.trainer.run_report import RunReport
from recforge.trainer.schedulers import EpochSchedule
from recforge.trainer.scoring import check_training_data, score_loader
from recforge.trainer.serving_file import ServingWriter
from recforge.trainer.state import TrainingState
from recforge.utils.log import detach_run_log

logger = logging.getLogger("recforge")


@register_trainer
class Trainer(Optimization, TrainingState, AbstractTrainer):
    """The trainer for models optimised with one loss, several losses, or several alternating objectives.

    Args:
        config: the run config.
        model: a ``Recommender``; it is moved to ``config["device"]``.
        run_dir: the run folder (config.yaml, run.log, history.jsonl, metrics.json, checkpoints/); by default a
            new one under ``checkpoint_dir``, made when ``fit`` first writes.
        callbacks: extra callbacks, run after the built-in ones.
        objectives: what to optimise (default: ``build_objectives()``, the model's ``calculate_loss``).
        optimizers: extra optimizer specs (default: ``build_optimizers()``, one "main" optimizer).
        hooks: epoch hooks (default: ``build_hooks()``, none).

    Attributes (RecBole's names): ``start_epoch``, ``cur_step`` (validations since the last improvement),
    ``best_valid_score``, ``best_valid_result``, ``train_loss_dict`` ({epoch: total loss}), ``optimizer``
    (the "main" optimizer; all are in ``optimizers``), ``saved_model_file``, ``enable_amp``, ``enable_scaler``.
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
        self.device = distributed.setup(torch.device(config["device"]))
        self.model.to(self.device)
        if distributed.is_distributed() and next(model.parameters(), None) is not None:
            self.distributed_model = distributed.wrap(self.model, self.device)
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
        self.trainable: bool = getattr(model, "trainable", True)
        self.precision = Precision(config["precision"], self.device, config["enable_scaler"])
        self.enable_amp = self.precision.enabled
        self.enable_scaler = self.precision.scaler.is_enabled()
        self.objectives = objectives if objectives is not None else self.build_objectives()
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, EpochSchedule] = {}
        if self.trainable:
            self._build_optimizers(optimizers if optimizers is not None else self.build_optimizers())
        self.evaluator = Evaluator.from_config(config)
        self.run_folder = RunFolder(run_dir) if run_dir is not None else None
        detach_run_log()
        self._folder_ready = False
        self._resume_plan: tuple[RunFolder | None, int, bool] | None = None
        hooks = hooks if hooks is not None else self.build_hooks()
        builtin: list[Callback] = [
            EarlyStopping(self.stopping_step),
            SchedulerStep(),
            RunLog(),  # the epoch's history line before its last.pth: a kill between leaves a line resume drops
            EpochLog(),
            ProgressBar(),
            RunSummary(),
            ServingWriter(),  # serving.npz, for recforge.load
            RunReport(),  # report.html
        ]
        if hooks:
            builtin.insert(0, EpochHooks(hooks))
        if config["tensorboard"]:
            builtin.append(TensorBoardLog())
        self.callbacks: list[Callback] = [*builtin, *callbacks]
        # Checkpoints are written after every callback has seen the event, so they hold every callback's state
        # of the epoch (Lightning also checkpoints last).
        self.checkpoints = Checkpoints()
        self._unclaimed_callback_states: dict[str, Any] = {}

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
        self.valid_data: Any = None  # the validation loader of the last fit
        self.evaluated_data: Any = None  # the loader of the last evaluate
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
        """Epoch hooks (work done at the start or end of epochs, e.g. a clustering E-step); by default the
        model's own ``on_epoch_start`` when it has one."""
        if getattr(type(self.model), "on_epoch_start", Recommender.on_epoch_start) is Recommender.on_epoch_start:
            return []
        return [EpochHook(lambda trainer, epoch: trainer.model.on_epoch_start(epoch), when="start")]

    def add_callback(self, callback: Callback) -> None:
        """Add ``callback`` after the others (a trainer built with RecBole's ``(config, model)`` constructor gets
        its callbacks this way); a state for it in a checkpoint already resumed is restored now."""
        self.callbacks.append(callback)
        key = callback_keys(self.callbacks)[-1]
        if key in self._unclaimed_callback_states:
            callback.load_state_dict(self._unclaimed_callback_states.pop(key))

    def _emit(self, event: str, *args: Any) -> None:
        for callback in (*self.callbacks, self.checkpoints):
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
            saved: write the run folder (checkpoints ``last.pth`` every epoch and ``best.pth``, history, metrics,
                config, log); with False nothing is written and the best weights are kept in memory.
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
        if saved and self.run_folder is None:
            check_checkpoint_dir(self.config["checkpoint_dir"])  # a file there fails now, not after an epoch
        self.validates = valid_data is not None and self.eval_step > 0
        self.valid_data = valid_data
        self.should_stop = False
        self._has_fit = True
        self._attach_loaders(train_data)
        # A model fitted in one pass (Pop, ItemKNN) is fitted once, whatever epochs says (also epochs: 0).
        last_epoch = self.epochs if self.trainable else self.start_epoch + 1
        with self._interruptible(), self._run_folder_locked():
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
                self.start_epoch = epoch_idx + 1
                self._emit("on_epoch_end", epoch_idx)
                if self.should_stop:
                    break
            self._emit("on_fit_end")
        if not self.validates:
            return -1, None
        return self.best_valid_score, self.best_valid_result

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
            checkpoint, epoch = None, self.start_epoch - 1
            if self.saved and self.trainable and self._folder_ready and self.checkpoint_path("last").is_file():
                # An interrupt while callbacks end an epoch comes before its checkpoint: resume the one before.
                checkpoint, epoch = self.checkpoint_path("last"), self.checkpoints.saved_epoch
            interrupted = TrainingInterrupted(epoch, checkpoint)
            if distributed.is_main_process():
                logger.warning("%s", interrupted)
            raise interrupted from None
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
        for group in groups_of(due):
            results.update(self._run_group(group, train_data, epoch_idx, show_progress))
        self.last_losses = results
        if len(self.objectives) == 1:
            only = results[self.objectives[0].name]
            return 0.0 if only is None else only
        return tuple(0.0 if v is None else (sum(v) if isinstance(v, tuple) else v) for v in results.values())

    def _valid_epoch(self, valid_data, show_progress: bool = False) -> tuple[float, dict[str, float]]:
        """Evaluate on ``valid_data`` with the current weights; returns ``(valid_score, valid_result)``."""
        result = self.evaluate(valid_data, load_best_model=False, show_progress=show_progress)
        return result[self.valid_metric], result

    # -- evaluation --------------------------------------------------------------------------------
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
            if model_file is not None:
                self._load_weights(model_file)
            else:
                self._load_best()
        elif model_file is not None:
            logger.warning("evaluate: model_file %s is ignored because load_best_model is False", model_file)
        label_field = self.config["LABEL_FIELD"]
        merge = None
        if distributed.is_distributed():
            distributed.broadcast_model(self.model)  # every rank scores rank 0's weights (its best model)
            if hasattr(eval_data, "shard"):
                eval_data.shard(distributed.rank(), distributed.world_size())
                merge = distributed.merge_evaluators
            show_progress = show_progress and distributed.is_main_process()
        result = score_loader(self.model, eval_data, self.evaluator, self.device, label_field, show_progress, merge)
        self.evaluated_data = eval_data
        self._emit("on_evaluate_end", getattr(eval_data, "phase", None), result)
        return result

    def _load_best(self) -> None:
        epoch = f"epoch {self.best_epoch}" if self.best_epoch is not None else "the last epoch"
        best = self.best_checkpoint() if self.saved else None
        if best is not None:
            self._load_weights(best)
            logger.info("evaluating the best model of this run (%s, %s)", epoch, best)
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

    @property
    def has_fit(self) -> bool:
        """Whether ``fit`` has run (evaluate then knows this run's best model)."""
        return self._has_fit

    def keep_best_in_memory(self) -> None:
        """Copy the current weights as the best model (used when fit runs with ``saved=False``)."""
        self._best_in_memory = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
