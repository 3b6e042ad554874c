"""``tune``: an Optuna study over a search space; every trial is a normal recforge run scored on validation only.

The study lives in a folder (``study_dir``; by default ``<checkpoint_dir>/<Model>-<dataset>-study``) with its
storage (``sqlite:///<study dir>/study.db`` unless ``storage`` names any database URL Optuna accepts), so a study
that was stopped continues where it was: ``trials`` is the number of finished (COMPLETE or PRUNED) trials the
study should hold, counted over every process that shares the storage. Failed trials (a sampled value the config
or the model refuses) are recorded as FAIL with their error and do not count; a call stops after as many failures
as ``trials``. With the default storage the sampler is seeded with the config's ``seed`` plus the number of trials
the study already holds (a new study is reproducible, a continued one does not repeat its draws); with a storage
URL, which several processes may share, it draws its own seed so that they do not sample the same values. Each
trial runs with the config's seed, exactly as ``recforge run`` with its values.
"""

from __future__ import annotations

import logging
import math
import signal
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from recforge.config import Config
from recforge.config.sources import parse_command_line
from recforge.tuning import results
from recforge.tuning.holdout import best_test
from recforge.tuning.space import SearchSpace, read_space
from recforge.tuning.storage import connect, masked_url, storage_errors
from recforge.tuning.trial import TRIAL_FAILURES, TrialPlan, TuningError, user_settings
from recforge.utils.log import init_logger

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "none")
FINISHED = ("COMPLETE", "PRUNED")


class _Stderr(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time (test runners replace it)."""

    def emit(self, record: logging.LogRecord) -> None:
        sys.stderr.write(self.format(record) + "\n")


def progress_logger() -> logging.Logger:
    """``recforge.tuning``: one line per trial on stderr, kept out of the trials' run logs."""
    log = logging.getLogger("recforge.tuning")
    if not any(isinstance(h, _Stderr) for h in log.handlers):
        log.addHandler(_Stderr())
    log.propagate = False
    if log.level == logging.NOTSET:
        log.setLevel(logging.INFO)
    return log


def tune(
    model: str | None = None,
    dataset: str | None = None,
    *,
    space: str | Path | Mapping[str, Any] | SearchSpace,
    trials: int = 20,
    study_dir: str | Path | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    sampler: str | Any = "tpe",
    pruner: str | Any = "median",
    timeout: float | None = None,
    config_file_list: Iterable[str | Path] | None = None,
    config_dict: Mapping[str, Any] | None = None,
    cmd_args: Mapping[str, str] | Iterable[str] | None = None,
    verbose: bool = False,
) -> dict[str, Any]:
    """Search ``space`` for the best validation score of ``model`` on ``dataset`` (see the module docstring).

    ``space``: a YAML or hyper.test file, a YAML-style mapping or a ``SearchSpace``; ``trials``: finished trials the
    study should hold on return (fewer after ``timeout`` seconds, after which no trial starts, an exhausted grid or
    too many failures); ``sampler`` / ``pruner``: "tpe" | "random" | "grid" / "median" | "none", or Optuna objects;
    the fixed settings as for ``recforge.run`` (a searched key may be in a config file: the sampled value wins);
    ``verbose``: trials log like ``recforge.run``, otherwise one line per trial (logger ``recforge.tuning``).

    Returns the results, also written to the study folder: ``{"study_dir", "study_name", "storage", "direction",
    "valid_metric", "stopped", "counts", "trials", "best_trial", "importances", "importances_note",
    "best_checkpoint", "best_test_result", "best_test_note", "best_test_stored", "best_test_evaluated_at"}``.
    Raises SearchSpaceError / ConfigError / TuningError before anything is written when the space, the options, the
    fixed settings or the storage do not fit; TuningError when no trial completed or the storage fails;
    ``TrialInterrupted`` (a KeyboardInterrupt) on Ctrl-C or SIGTERM: the same call continues the study.
    """
    optuna = _import_optuna()
    space = read_space(space)
    _check_options(space, trials, sampler, pruner, timeout)
    files = [str(f) for f in config_file_list or []]
    fixed = dict(config_dict or {})
    cmd = dict(cmd_args) if isinstance(cmd_args, Mapping) else parse_command_line(cmd_args or [])
    init_logger("INFO" if verbose else "WARNING")
    base = _study_config(model, dataset, space, files, fixed, cmd)
    folder = _study_folder(study_dir, base)
    url = storage or f"sqlite:///{folder / 'study.db'}"
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # recforge.tuning reports each trial, failures included
    try:
        with storage_errors(url, "failed during the study"), _sigterm_interrupts():
            study = _open_study(optuna, url, study_name or f"{base['model']}-{base['dataset']}", base, space)
            seed = base["seed"] + len(study.trials) if storage is None else None
            study.sampler = make_sampler(sampler, space, seed)
            study.pruner = make_pruner(pruner)
            fixed.pop("checkpoint_dir", None)  # the trials' run folders go to <study dir>/trials
            cmd.pop("checkpoint_dir", None)
            plan = TrialPlan(base["model"], base["dataset"], space, folder / "trials", files, fixed, cmd, verbose)
            stopped = _search(optuna, study, plan, trials, timeout, base["valid_metric"])
            return _finish(study, folder, masked_url(url), base["valid_metric"], stopped)
    finally:
        optuna.logging.set_verbosity(verbosity)


def _check_options(space: SearchSpace, trials: int, sampler: Any, pruner: Any, timeout: float | None) -> None:
    """Refuse options that cannot work, before anything is read or written."""
    if trials < 1:
        raise TuningError(f"trials must be at least 1, not {trials}")
    if timeout is not None and not (isinstance(timeout, (int, float)) and 0 < timeout < math.inf):
        value = f"{timeout:g}" if isinstance(timeout, (int, float)) else repr(timeout)
        raise TuningError(
            f"timeout must be a positive, finite number of seconds (no new trial starts after it), not {value}"
        )
    if isinstance(sampler, str) and sampler not in SAMPLERS:
        raise TuningError(f"unknown sampler '{sampler}'; use one of {', '.join(SAMPLERS)}")
    if isinstance(pruner, str) and pruner not in PRUNERS:
        raise TuningError(f"unknown pruner '{pruner}'; use one of {', '.join(PRUNERS)}")
    if sampler == "grid":
        space.grid()  # a continuous key or a grid too large is an error now, before the study exists


def _study_config(
    model: str | None, dataset: str | None, space: SearchSpace, files: list[str], fixed: dict, cmd: dict
) -> Config:
    """The study's resolved config without the searched values; refuses keys both searched and fixed, keys the
    model does not read, and settings a study cannot use."""
    for name in space:
        if name in fixed or name in cmd:
            where = "on the command line" if name in cmd else "in config_dict"
            raise space.error(name, f"also has a fixed value {where}; search it or fix it, not both")
    base = Config(model, dataset, files or None, fixed, cmd)
    space.check_keys(base)
    if base["eval_step"] <= 0:
        raise TuningError("a study needs validation scores: eval_step must be at least 1")
    if base["nproc"] > 1 or (base["world_size"] or 1) > 1:
        raise TuningError(
            "tune trains each trial in one process (nproc / world_size must be 1); to use several processes, start "
            "several recforge tune processes that share one --storage"
        )
    return base


def _study_folder(study_dir: str | Path | None, base: Config) -> Path:
    """The study folder (created), by absolute path: the trials record their run folders by absolute path."""
    folder = Path(study_dir or Path(base["checkpoint_dir"]) / f"{base['model']}-{base['dataset']}-study")
    folder = folder.expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM is Ctrl-C during the study (as the trainer makes it during training), so that a trial stopped
    between epochs or while its data loads is recorded as FAIL rather than left RUNNING."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def make_sampler(sampler: str | Any, space: SearchSpace, seed: int | None) -> Any:
    """An Optuna sampler by name (seeded with ``seed``; None: a seed of its own), or the sampler object given."""
    import optuna

    if not isinstance(sampler, str):
        return sampler
    if sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if sampler == "grid":
        return optuna.samplers.GridSampler(space.grid(), seed=seed)
    raise TuningError(f"unknown sampler '{sampler}'; use one of {', '.join(SAMPLERS)}")


def make_pruner(pruner: str | Any) -> Any:
    """An Optuna pruner by name (median: Optuna's MedianPruner with its defaults), or the pruner object given."""
    import optuna

    if not isinstance(pruner, str):
        return pruner
    if pruner == "median":
        return optuna.pruners.MedianPruner()
    if pruner == "none":
        return optuna.pruners.NopPruner()
    raise TuningError(f"unknown pruner '{pruner}'; use one of {', '.join(PRUNERS)}")


def _import_optuna():
    try:
        import optuna
    except ImportError:
        raise TuningError("tuning needs Optuna: pip install 'recforge[optuna]'") from None
    return optuna


def _open_study(optuna, url: str, name: str, base: Config, space: SearchSpace):
    """Create the study, or load it and check it is the same search (model, data set, metric, direction)."""
    direction = "maximize" if base["valid_metric_bigger"] else "minimize"
    study = connect(optuna, url, name, direction)
    identity = {"model": base["model"], "dataset": base["dataset"], "valid_metric": base["valid_metric"]}
    fixed = user_settings(base, exclude=("checkpoint_dir", *space))
    if not study.user_attrs:
        for key, value in {**identity, "fixed": fixed}.items():
            study.set_user_attr(key, value)
    stored = study.user_attrs
    for key, value in identity.items():
        if stored.get(key) != value:
            raise TuningError(
                f"study '{name}' in {masked_url(url)} searches {key} {stored.get(key)!r}, not {value!r}: give another "
                "--study-dir / --study-name, or the study's own settings"
            )
    if study.direction.name.lower() != direction:
        raise TuningError(f"study '{name}' in {masked_url(url)} does not {direction} {base['valid_metric']}")
    began = stored.get("fixed", {})
    changed = sorted(k for k in {*fixed, *began} if fixed.get(k) != began.get(k))
    if changed:
        progress_logger().warning(
            "study '%s' continues with other fixed settings than it began with (%s): its trials are no longer "
            "compared under the same conditions",
            name,
            ", ".join(changed),
        )
    return study


def _search(optuna, study, plan: TrialPlan, trials: int, timeout: float | None, metric: str) -> str:
    """Run trials until the study holds ``trials`` finished ones; returns why the search ended."""
    states = tuple(getattr(optuna.trial.TrialState, s) for s in FINISHED)

    def finished() -> int:
        return len(study.get_trials(deepcopy=False, states=states))

    if finished() >= trials:
        return f"the study already holds {finished()} finished trials (asked: {trials})"
    failures = 0
    log = progress_logger()

    def after(study, trial) -> None:
        nonlocal failures
        state = trial.state.name
        params = ", ".join(f"{k}={v!r}" for k, v in trial.params.items())
        if state == "COMPLETE":
            log.info("trial %d complete: %s %.6g (%s)", trial.number, metric, trial.value, params)
        elif state == "PRUNED":
            log.info("trial %d pruned after epoch %s (%s)", trial.number, trial.user_attrs.get("pruned_epoch"), params)
        else:
            failures += 1
            log.info("trial %d failed: %s (%s)", trial.number, trial.user_attrs.get("error", "see the log"), params)
        if finished() >= trials or failures >= trials:
            study.stop()

    study.optimize(plan, timeout=timeout, catch=TRIAL_FAILURES, callbacks=[after], gc_after_trial=False)
    if finished() >= trials:
        return f"{finished()} finished trials (asked: {trials})"
    if failures >= trials:
        return f"stopped after {failures} failed trials in this call"
    if timeout is not None:
        return f"timeout of {timeout:g} s reached"
    return "every value of the grid was tried"


def _finish(study, folder: Path, storage: str, metric: str, stopped: str) -> dict[str, Any]:
    """Write the results (``recforge.tuning.results``), give the best trial's test result (``best_test``: computed
    once per best trial), return them."""
    trials = study.get_trials(deepcopy=False)
    rows = results.trial_rows(trials)
    counts = {"TOTAL": len(trials)}
    for state in ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING"):
        counts[state] = sum(t.state.name == state for t in trials)
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    best = study.best_trial if complete else None
    ranked, note = results.importances(study)
    summary: dict[str, Any] = {
        "study_dir": str(folder),
        "study_name": study.study_name,
        "storage": storage,
        "direction": study.direction.name.lower(),
        "valid_metric": metric,
        "stopped": stopped,
        "counts": counts,
        "best_trial": None,
        "importances": ranked,
        "importances_note": note,
    }
    results.write_trials_csv(rows, folder / "trials.csv")
    if best is not None:
        summary["best_trial"] = {
            "number": best.number,
            "valid_score": best.value,
            "params": dict(best.params),
            "run_dir": best.user_attrs.get("run_dir"),
        }
        results.write_best_yaml(best, folder / "best.yaml", metric)
    results.write_json(folder / "results.json", summary)
    if best is None:
        errors = [r["error"] for r in rows if r["error"]]
        first = f"; first error: {errors[0]}" if errors else ""
        raise TuningError(f"no trial of study '{study.study_name}' completed{first} (trials: {folder / 'trials.csv'})")
    checkpoint = Path(best.user_attrs["run_dir"]) / "checkpoints" / "best.pth"
    record = {"study_name": study.study_name, "trial": best.number, "checkpoint": str(checkpoint)}
    test = best_test(folder / "best_test.json", {**record, "valid_score": best.value})
    return {**summary, "trials": rows, "best_checkpoint": str(checkpoint), **test}
