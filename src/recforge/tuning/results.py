"""What a study leaves in its folder, and the text ``recforge tune`` prints.

::

    <study dir>/
        study.db          the Optuna storage (default; --storage puts it elsewhere)
        trials/           one normal run folder per trial
        trials.csv        number, state, valid_score, one column per searched key, epochs, duration_s, run_dir, error
        best.yaml         the best trial's settings: recforge run --config_files best.yaml repeats it
        results.json      the study, its trial counts, the best trial, the parameter importances
        best_test.json    the best trial's test result, computed once after the search (never seen by the search)
                          and given again, not computed again, while the best trial stays the same

``valid_score`` is the trial's best validation score: the objective value of a COMPLETE trial, the best score
before pruning of a PRUNED one, empty for FAIL and RUNNING trials. A searched key named like one of the other
columns is written as ``param_<key>``.
"""

from __future__ import annotations

import csv
import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from recforge.utils.files import atomic_write

COLUMNS = ("number", "state", "valid_score", "epochs", "duration_s", "run_dir", "error")


def _column(name: str) -> str:
    return f"param_{name}" if name in COLUMNS else name


def valid_score(trial: Any) -> float | None:
    """The trial's best validation score (see the module docstring)."""
    if trial.state.name == "COMPLETE":
        return trial.value
    return trial.user_attrs.get("best_valid_score") if trial.state.name == "PRUNED" else None


def trial_rows(trials: Sequence[Any]) -> list[dict[str, Any]]:
    """One row per trial, in trial order; missing values are None."""
    names = list(dict.fromkeys(name for trial in trials for name in trial.params))
    rows = []
    for trial in trials:
        row: dict[str, Any] = {"number": trial.number, "state": trial.state.name, "valid_score": valid_score(trial)}
        row.update({_column(name): trial.params.get(name) for name in names})
        duration = trial.duration
        row.update(
            epochs=trial.user_attrs.get("epochs"),
            duration_s=round(duration.total_seconds(), 3) if duration is not None else None,
            run_dir=trial.user_attrs.get("run_dir"),
            error=trial.user_attrs.get("error"),
        )
        rows.append(row)
    return rows


def write_trials_csv(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    """``trials.csv`` (empty cells for missing values)."""
    fields = list(rows[0]) if rows else list(COLUMNS)
    with atomic_write(path, "w") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def format_trials(rows: Sequence[Mapping[str, Any]]) -> str:
    """The trials as an aligned text table (run folders by name; errors listed below the table)."""
    if not rows:
        return "(no trials)"
    shown = [c for c in rows[0] if c != "error"]
    cells = [[_cell(c, row[c]) for c in shown] for row in rows]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(shown)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(shown, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in cells]
    lines += [f"trial {row['number']}: {row['error']}" for row in rows if row.get("error")]
    return "\n".join(lines)


def _cell(column: str, value: Any) -> str:
    if value is None:
        return "-"
    if column == "run_dir":
        return Path(value).name
    if isinstance(value, float):
        return f"{value:.4f}" if column == "valid_score" else f"{value:.4g}"
    return str(value)


def write_best_yaml(trial: Any, path: Path, metric: str) -> dict[str, Any]:
    """``best.yaml``: the settings the best trial ran with (model, dataset, the study's fixed keys, the sampled
    values), as resolved config values. Returns them."""
    settings = dict(trial.user_attrs["config"])
    header = (
        f"# best trial {trial.number}: {metric} {trial.value!r} on validation\n"
        "# repeat it with: recforge run --config_files best.yaml\n"
    )
    with atomic_write(path, "w") as handle:
        handle.write(header + yaml.safe_dump(settings, sort_keys=False, allow_unicode=True))
    return settings


def importances(study: Any) -> tuple[dict[str, float] | None, str | None]:
    """Optuna's parameter importances (PED-ANOVA, over COMPLETE trials) and None, or None and why not."""
    import optuna

    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    if len(complete) < 2:
        return None, f"parameter importances need at least 2 completed trials ({len(complete)} so far)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PED-ANOVA warns that few trials give equal importances
            evaluator = optuna.importance.PedAnovaImportanceEvaluator()
            found = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (ValueError, RuntimeError) as exc:
        return None, f"parameter importances could not be computed: {exc}"
    return {name: float(value) for name, value in found.items()}, None


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    with atomic_write(path, "w") as handle:
        json.dump(data, handle, indent=2, allow_nan=True)
        handle.write("\n")


def format_summary(result: Mapping[str, Any]) -> str:
    """What ``recforge tune`` prints: the study, the trials table, the best trial, the importances, and, apart,
    the best trial's test result."""
    counts = result["counts"]
    states = ", ".join(f"{n} {s.lower()}" for s, n in counts.items() if n and s != "TOTAL")
    lines = [
        f"study {result['study_name']} ({result['storage']}): {counts['TOTAL']} trials ({states}); {result['stopped']}",
        f"objective: {result['valid_metric']} on the validation split, {result['direction']}d",
        "",
        format_trials(result["trials"]),
        "",
    ]
    best = result["best_trial"]
    if best is not None:
        params = ", ".join(f"{k}={v!r}" for k, v in best["params"].items())
        lines.append(f"best: trial {best['number']}, {result['valid_metric']} {best['valid_score']:.6g} ({params})")
    if result["importances"] is not None:
        ranked = ", ".join(f"{k} {v:.3f}" for k, v in result["importances"].items())
        lines.append(f"parameter importances: {ranked}")
    else:
        lines.append(result["importances_note"])
    folder = Path(result["study_dir"])
    lines.append(f"wrote {folder / 'trials.csv'}, {folder / 'best.yaml'}, {folder / 'results.json'}")
    if best is not None:
        lines += ["", *_test_lines(result, folder)]
    return "\n".join(lines)


def _test_lines(result: Mapping[str, Any], folder: Path) -> list[str]:
    """The best trial's test result: computed now, or the stored one (said so, with when it was computed)."""
    best, checkpoint = result["best_trial"]["number"], result["best_checkpoint"]
    if result.get("best_test_stored"):
        lines = [
            f"test result of the best trial: the stored result of trial {best}, evaluated on "
            f"{result['best_test_evaluated_at']} from {checkpoint} (not evaluated again):"
        ]
    else:
        lines = [f"test result of the best trial (after the search, from {checkpoint}):"]
    test = result["best_test_result"]
    if test is None:
        return [*lines, result["best_test_note"]]
    width = max(map(len, test))
    lines += [f"{k.ljust(width)}  {v:.4f}" for k, v in test.items()]
    return [*lines, f"{'read' if result.get('best_test_stored') else 'wrote'} {folder / 'best_test.json'}"]
