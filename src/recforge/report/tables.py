"""The tables of a report: final results, timings and the resolved config against its defaults (the comparison's
table of runs is ``recforge.report.comparison``). A numeric cell holds its exact value in ``data-value``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from recforge.report.defaults import UNKNOWN, Setting, settings
from recforge.report.runs import Run


def number_cell(value: Any, places: int = 4, tag: str = "td") -> str:
    """A cell of a number, shown with ``places`` decimals, its exact value in ``data-value``; "-" for None."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return f'<{tag} class="num">-</{tag}>'
    shown = f"{value:.{places}f}" if isinstance(value, float) else str(value)
    return f'<{tag} class="num" data-value="{value!r}">{shown}</{tag}>'


def plain(value: Any) -> str:
    """A config value as one line of text (YAML's flow style for lists and mappings)."""
    if value is UNKNOWN:
        return "?"
    if isinstance(value, (dict, list, bool)):
        return json.dumps(value, separators=(", ", ": "))
    return "~" if value is None else str(value)


def _places(run: Run) -> int:
    return int(run.config.get("metric_decimal_place") or 4)


def results_table(run: Run) -> str:
    """Metrics by row; the best validation result and the test result (metrics.json) by column."""
    columns: dict[str, Mapping[str, Any]] = {}
    if run.metrics.get("best_valid_result"):
        columns[f"valid (best, epoch {run.best_epoch})"] = run.metrics["best_valid_result"]
    if run.metrics.get("test_result"):
        columns["test"] = run.metrics["test_result"]
    if not columns:
        why = "the run did not finish" if not run.metrics else "no validation or test result"
        return f'<p class="empty">No final results: {why}.</p>'
    metrics = list(dict.fromkeys(m for values in columns.values() for m in values))
    head = "".join(f"<th>{escape(name)}</th>" for name in columns)
    rows = [
        f'<tr data-metric="{escape(m)}"><th>{escape(m)}</th>'
        + "".join(number_cell(values.get(m), _places(run)) for values in columns.values())
        + "</tr>"
        for m in metrics
    ]
    return f'<table class="results"><thead><tr><th>metric</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _names(runs: Sequence[Run], labels: Mapping[str, str] | None) -> list[str]:
    return [(labels or {}).get(run.name, run.name) for run in runs]


def timings_table(runs: Sequence[Run], labels: Mapping[str, str] | None = None) -> str:
    """Per run (named by ``labels`` when given): epochs, seconds of training (total and per epoch), of
    validation, and both together."""
    head = "<th>run</th>" if len(runs) > 1 else ""
    rows = []
    for run, shown in zip(runs, _names(runs, labels), strict=True):
        train, valid = run.seconds("train"), run.seconds("valid")
        epochs = len(run.history)
        validated = sum(1 for r in run.history if "valid_seconds" in r)
        cells = [
            number_cell(epochs),
            number_cell(train, 3),
            number_cell(train / epochs if epochs else None, 3),
            number_cell(valid if validated else None, 3),
            number_cell(validated),
            number_cell(train + valid, 3),
        ]
        name = f"<th>{escape(shown)}</th>" if len(runs) > 1 else ""
        rows.append(f"<tr>{name}{''.join(cells)}</tr>")
    return (
        f'<table class="timings"><thead><tr>{head}<th>epochs</th><th>training (s)</th><th>per epoch (s)</th>'
        f"<th>validation (s)</th><th>validations</th><th>total (s)</th></tr></thead><tbody>{''.join(rows)}</tbody>"
        "</table>"
    )


def config_table(runs: Sequence[Run], only_changed: bool = False, labels: Mapping[str, str] | None = None) -> str:
    """Every config key with its default and each run's value. A value that differs from the default is marked
    ``changed`` (its row too); with several runs a row whose values differ between the runs is marked
    ``varies``. ``only_changed``: the table starts with the other rows hidden (class ``only-changed``); runs are
    named by ``labels`` when given."""
    per_run = [{s.key: s for s in settings(run.config)} for run in runs]
    keys = list(dict.fromkeys(key for found in per_run for key in found))
    names = "".join(f"<th>{escape(n)}</th>" for n in _names(runs, labels)) if len(runs) > 1 else "<th>value</th>"
    rows = []
    for key in keys:
        found = [one.get(key) for one in per_run]
        defaults = dict.fromkeys(plain(s.default) for s in found if s is not None)  # models' defaults may differ
        classes = []
        if any(s is not None and s.changed for s in found):
            classes.append("changed")
        if len(runs) > 1 and len({plain(s.value) if s is not None else None for s in found}) > 1:
            classes.append("varies")
        cells = "".join(_config_cell(s) for s in found)
        row_class = f' class="{" ".join(classes)}"' if classes else ""
        rows.append(
            f'<tr data-key="{escape(key)}"{row_class}><th>{escape(key)}</th>{cells}'
            f'<td class="default">{escape(" | ".join(defaults))}</td></tr>'
        )
    css = "config only-changed" if only_changed else "config"
    return (
        f'<table class="{css}"><thead><tr><th>key</th>{names}<th>default</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _config_cell(setting: Setting | None) -> str:
    if setting is None:
        return '<td class="absent">-</td>'
    css = ' class="changed"' if setting.changed else ""
    return f"<td{css}>{escape(plain(setting.value))}</td>"
