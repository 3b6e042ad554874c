"""The trials of a tuning study, read back from the study folder that ``recforge tune`` writes (``trials/`` holds
one run folder per trial, ``trials.csv`` one row per trial: number, state, ..., run_dir, error; ``results.json``
names the best trial). The report reads these files itself: it sits below the tuning package.

A run folder is a study's trial when a ``trials.csv`` in one of its parent folders (up to ``MAX_UP`` levels) names
it in ``run_dir`` (by path, or by folder name when the study folder was moved). Trials without a run folder (a
value the config refused: FAIL before training) are listed by ``orphans``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

TRIALS_CSV = "trials.csv"
MAX_UP = 3
STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")


@dataclass(frozen=True)
class Trial:
    """One trial of a study: its number, state (COMPLETE, PRUNED, FAIL, RUNNING), the study folder, whether it
    is the study's best trial, its error (a failed trial) and run folder (None without one)."""

    number: int
    state: str
    study: Path
    best: bool = False
    error: str | None = None
    run_dir: Path | None = None


def _rows(study: Path) -> list[dict[str, str]]:
    try:
        with (study / TRIALS_CSV).open(encoding="utf-8", newline="") as handle:
            return [row for row in csv.DictReader(handle) if (row.get("number") or "").strip().isdigit()]
    except (OSError, csv.Error, UnicodeDecodeError):
        return []  # not a study's file after all, or damaged: the runs are reported without trial numbers


def _best(study: Path) -> int | None:
    try:
        best = json.loads((study / "results.json").read_text(encoding="utf-8")).get("best_trial") or {}
    except (OSError, ValueError, AttributeError):
        return None
    return best.get("number") if isinstance(best.get("number"), int) else None


def study_trials(study: Path) -> list[Trial]:
    """The trials of the study in ``study`` (its ``trials.csv``), in its order; [] when there is none."""
    best = _best(study)
    trials = []
    for row in _rows(study):
        number = int(row["number"])
        run_dir = Path(row["run_dir"]) if (row.get("run_dir") or "").strip() else None
        state = (row.get("state") or "?").strip() or "?"
        trials.append(Trial(number, state, study, number == best, (row.get("error") or "").strip() or None, run_dir))
    return trials


def _studies_above(folder: Path) -> Iterable[Path]:
    for parent in list(folder.resolve().parents)[:MAX_UP]:
        if (parent / TRIALS_CSV).is_file():
            yield parent


def find_trials(folders: Iterable[Path]) -> dict[Path, Trial]:
    """The trial of each run folder in ``folders`` that a study names, by the folder as given."""
    found: dict[Path, Trial] = {}
    cache: dict[Path, list[Trial]] = {}
    for folder in folders:
        for study in _studies_above(folder):
            trials = cache.setdefault(study, study_trials(study))
            match = _match(folder, trials)
            if match is not None:
                found[folder] = match
                break
    return found


def _match(folder: Path, trials: list[Trial]) -> Trial | None:
    resolved = folder.resolve()
    for trial in trials:
        if trial.run_dir is not None and trial.run_dir.expanduser().resolve() == resolved:
            return trial
    by_name = [t for t in trials if t.run_dir is not None and t.run_dir.name == folder.name]
    return by_name[0] if len(by_name) == 1 else None


def orphans(trials: Iterable[Trial]) -> list[Trial]:
    """The trials of the studies that ``trials`` belong to that have no run folder, by study and number."""
    studies = dict.fromkeys(trial.study for trial in trials)
    return [t for study in studies for t in study_trials(study) if t.run_dir is None]
