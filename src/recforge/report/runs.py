"""Run folders read back for a report: each run's history, final metrics and resolved config.

A run folder is one that holds ``history.jsonl`` or ``metrics.json`` (``recforge.trainer.run_folder``). A folder
that is neither but holds run folders below it (a ``checkpoint_dir``, a tuning study whose trials are run folders)
stands for all of them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from recforge.errors import RecforgeError
from recforge.report.trials import Trial, find_trials
from recforge.trainer.run_folder import RunFolder
from recforge.utils.yaml_text import load_yaml

MARKERS = ("history.jsonl", "metrics.json")


class ReportError(RecforgeError, ValueError):
    """A report cannot be made from the folders given (not run folders, unreadable files, no output named)."""


@dataclass
class Run:
    """One run folder's content. ``metrics`` is {} when the run did not finish (no ``metrics.json``), ``config``
    {} without ``config.yaml``; ``notes`` say what is missing; ``trial`` is the study's trial that the run is
    (``recforge.report.trials``), None for a run of its own."""

    path: Path
    name: str
    history: list[dict[str, Any]]
    metrics: dict[str, Any]
    config: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    trial: Trial | None = None

    @property
    def model(self) -> str:
        return str(self.metrics.get("model") or self.config.get("model") or "?")

    @property
    def dataset(self) -> str:
        return str(self.metrics.get("dataset") or self.config.get("dataset") or "?")

    @property
    def valid_metric(self) -> str | None:
        return self.config.get("valid_metric")

    @property
    def validates(self) -> bool:
        """Whether any epoch was validated."""
        return any("valid_result" in record for record in self.history)

    @property
    def best_epoch(self) -> int | None:
        """``best_epoch`` of metrics.json; for an unfinished run the last improved epoch of the history."""
        if self.metrics.get("best_epoch") is not None:
            return int(self.metrics["best_epoch"])
        improved = [r["epoch"] for r in self.history if r.get("improved")]
        return improved[-1] if improved else None

    @property
    def best_valid_score(self) -> float | None:
        """The best validation score (None without validation)."""
        if not self.validates:
            return None
        if "best_valid_score" in self.metrics:
            return self.metrics["best_valid_score"]
        best = self.best_epoch
        return next((r["valid_score"] for r in self.history if r["epoch"] == best and "valid_score" in r), None)

    @property
    def epochs(self) -> int:
        """Epochs completed: ``epochs_run`` of metrics.json, else the number of history lines."""
        return int(self.metrics.get("epochs_run", len(self.history)))

    def seconds(self, kind: str) -> float:
        """Sum of ``<kind>_seconds`` ("train" or "valid") over the epochs."""
        return sum(r.get(f"{kind}_seconds") or 0.0 for r in self.history)


def find_run_folders(paths: Iterable[str | Path]) -> list[Path]:
    """The run folders that ``paths`` stand for, each once, in the order given (those below a folder sorted by
    path). Raises ``ReportError`` for a path that does not exist or is neither a run folder nor holds one."""
    found: list[Path] = []
    for given in paths:
        path = Path(given).expanduser()
        if not path.exists():
            raise ReportError(f"{path}: no such folder; give a run folder (what recforge run writes)")
        if not path.is_dir():
            raise ReportError(f"{path} is a file; give a run folder (what recforge run writes) or a folder of them")
        below = [path] if is_run_folder(path) else _run_folders_below(path)
        if not below:
            raise ReportError(
                f"{path} is not a run folder: it has no history.jsonl and no metrics.json, and no folder below it "
                "has them; give a folder that recforge run wrote under checkpoint_dir, or a folder of such folders"
            )
        found += [p for p in below if p.resolve() not in {f.resolve() for f in found}]
    return found


def is_run_folder(path: Path) -> bool:
    return any((path / name).is_file() for name in MARKERS)


def _run_folders_below(root: Path) -> list[Path]:
    folders = {marker.parent for name in MARKERS for marker in root.rglob(name)}
    # A run folder inside another one's files (a copy under checkpoints/, say) is that run's, not a run of its own.
    return sorted(p for p in folders if not any(parent in folders for parent in p.parents))


def load_run(path: Path, name: str | None = None) -> Run:
    """Read one run folder; a torn last line of history.jsonl (a run killed during a write) is skipped with a
    warning. Raises ``ReportError`` when metrics.json or config.yaml cannot be read."""
    folder = RunFolder(path)
    history = [json.loads(line) for line in folder.history()]
    history = [r for r in history if isinstance(r, dict) and isinstance(r.get("epoch"), int)]
    notes = []
    metrics: dict[str, Any] = {}
    if folder.metrics_file.is_file():
        metrics = _read(folder.metrics_file, json.loads)
    else:
        notes.append("no metrics.json: the run did not finish, so there is no final result")
    config: dict[str, Any] = {}
    config_file = path / "config.yaml"
    if config_file.is_file():
        config = _read(config_file, load_yaml) or {}
    else:
        notes.append("no config.yaml")
    if not history:
        notes.append("no epochs in history.jsonl")
    return Run(path, name or path.name, history, metrics, config, notes)


def _read(path: Path, parse) -> dict[str, Any]:
    try:
        value = parse(path.read_text(encoding="utf-8"))
    except (ValueError, yaml.YAMLError) as exc:
        raise ReportError(f"{path} cannot be read ({exc}); the run folder is damaged") from None
    if not isinstance(value, dict):
        raise ReportError(f"{path} does not hold a mapping; the run folder is damaged")
    return value


def load_runs(paths: Iterable[str | Path]) -> list[Run]:
    """Every run that ``paths`` stand for (see ``find_run_folders``), named by their folder (by their path
    below the common folder when two folders have the same name), each with its trial when it is a study's."""
    folders = find_run_folders(paths)
    names = [p.name for p in folders]
    if len(set(names)) < len(names):
        common = Path(os.path.commonpath([p.resolve().parent for p in folders]))
        names = [str(p.resolve().relative_to(common)) for p in folders]
    runs = [load_run(path, name) for path, name in zip(folders, names, strict=True)]
    trials = find_trials(folders)
    for run, folder in zip(runs, folders, strict=True):
        run.trial = trials.get(folder)
    return runs
