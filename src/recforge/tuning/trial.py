"""One trial of a study: a normal run (``recforge.run``) with the sampled values, scored on validation only.

The trial's run evaluates no test data (``run(..., evaluate_test=False)``). Each validation score is reported to
Optuna as the intermediate value of its epoch; when the pruner says so, training stops after that epoch and the
trial ends PRUNED (the pruner is not asked after the last epoch or when early stopping ends training: such a trial
completes). The trial's user attributes record its run folder (``run_dir``), the config keys it set
(``config``: the study's fixed settings and the sampled values, what ``best.yaml`` holds), ``best_valid_score``,
``epochs`` trained, ``pruned_epoch`` and, for a failed trial, ``error``.

A trial stopped by Ctrl-C or SIGTERM ends FAIL and raises ``TrialInterrupted`` (a KeyboardInterrupt: the study
stops, and the same ``recforge tune`` command continues it). The trainer's own warning, which advises
``recforge run --resume <checkpoint>``, is dropped during a trial by a logging filter: resuming the trial's run
alone would not continue the study.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from recforge.errors import RecforgeError, TrainingInterrupted
from recforge.quick_start import run
from recforge.trainer.callbacks import Callback
from recforge.tuning.space import SearchSpace

# Failures of one trial's values (a config error, a size that does not fit): the trial is FAIL, the study goes on.
TRIAL_FAILURES: tuple[type[Exception], ...] = (RecforgeError, MemoryError, torch.cuda.OutOfMemoryError)
# Layers of a Config that a user set (the others are defaults); their keys are the trial's settings.
_USER_LAYERS = ("config file ", "config_dict", "the command line")


class TuningError(RecforgeError):
    """A study cannot start or cannot give a result (no trial completed, a study of another model ...)."""


class TrialInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped trial ``number`` (recorded as FAIL); the message says so."""

    def __init__(self, number: int) -> None:
        self.number = number
        super().__init__(f"trial {number} was stopped and is recorded as FAIL")


class _NoResumeAdvice(logging.Filter):
    """Drops the trainer's ``TrainingInterrupted`` warning (its ``recforge run --resume`` advice)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not any(isinstance(arg, TrainingInterrupted) for arg in args)


@contextmanager
def _without_resume_advice() -> Iterator[None]:
    """The trainer logs through the ``recforge`` logger; the filter sits there while a trial runs."""
    log, quiet = logging.getLogger("recforge"), _NoResumeAdvice()
    log.addFilter(quiet)
    try:
        yield
    finally:
        log.removeFilter(quiet)


def user_settings(config: Any, exclude: Iterable[str] = ("checkpoint_dir",)) -> dict[str, Any]:
    """The keys of a resolved Config that a file, the config dict or the command line set, with their resolved
    values, plus ``model`` and ``dataset``: a config file that gives the same run."""
    values = config.to_dict()
    chosen = {"model": values["model"], "dataset": values["dataset"]}
    for name, value in values.items():
        if name not in exclude and config.source(name).startswith(_USER_LAYERS):
            chosen[name] = value
    return chosen


class TrialReporter(Callback):
    """Reports validation scores to an Optuna trial and stops training when the trial should be pruned."""

    def __init__(self, trial: Any) -> None:
        self.trial = trial
        self.pruned_epoch: int | None = None

    def on_fit_start(self, trainer) -> None:
        self.trial.set_user_attr("config", user_settings(trainer.config))
        self._note_run_dir(trainer)

    def on_validation_end(self, trainer, epoch, score, result, improved) -> None:
        self.trial.report(float(score), epoch)
        ends_anyway = trainer.should_stop or not trainer.trainable or epoch + 1 >= trainer.epochs
        if not ends_anyway and self.trial.should_prune():  # a trial that ends by itself completes
            self.pruned_epoch = epoch
            trainer.should_stop = True

    def on_fit_end(self, trainer) -> None:
        self._note_run_dir(trainer)
        self.trial.set_user_attr("epochs", trainer.start_epoch)

    def _note_run_dir(self, trainer) -> None:
        if trainer.run_dir is not None and trainer.saved:
            self.trial.set_user_attr("run_dir", str(trainer.run_dir))


@dataclass
class TrialPlan:
    """What every trial of a study shares: the run's arguments besides the sampled values."""

    model: str | None
    dataset: str | None
    space: SearchSpace
    trials_dir: Path
    config_file_list: list[str] = field(default_factory=list)
    config_dict: Mapping[str, Any] = field(default_factory=dict)
    cmd_args: Mapping[str, str] = field(default_factory=dict)
    verbose: bool = False

    def __call__(self, trial: Any) -> float:
        """Optuna's objective: the run's best validation score. Raises ``optuna.TrialPruned`` when pruned,
        ``TrialInterrupted`` when interrupted (the study stops), a ``TRIAL_FAILURES`` error when the run fails."""
        import optuna

        reporter = TrialReporter(trial)
        try:
            values = {**self.config_dict, **self.space.suggest(trial), "checkpoint_dir": str(self.trials_dir)}
            with _without_resume_advice():
                result = run(
                    self.model,
                    self.dataset,
                    self.config_file_list or None,
                    values,
                    cmd_args=dict(self.cmd_args),
                    verbose=self.verbose,
                    callbacks=[reporter],
                    evaluate_test=False,
                )
        except (TrainingInterrupted, KeyboardInterrupt):  # during training, or while the data loads
            trial.set_user_attr("error", "interrupted (Ctrl-C or SIGTERM)")
            raise TrialInterrupted(trial.number) from None
        except TRIAL_FAILURES as exc:
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
            raise
        if result["run_dir"] is not None:
            trial.set_user_attr("run_dir", result["run_dir"])
        score = float(result["best_valid_score"])
        if result["best_valid_result"] is None or not math.isfinite(score):
            message = "the run gave no finite validation score: a study needs a validation split and finite scores"
            trial.set_user_attr("error", f"TuningError: {message}")
            raise TuningError(message)
        trial.set_user_attr("best_valid_score", score)
        if reporter.pruned_epoch is not None:
            trial.set_user_attr("pruned_epoch", reporter.pruned_epoch)
            raise optuna.TrialPruned(f"pruned after epoch {reporter.pruned_epoch}")
        return score
