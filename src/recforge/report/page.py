"""The report page: one self-contained HTML document (inline CSS, inline SVG, inline JavaScript: see
``recforge.report.assets``; nothing is fetched).

One run: its summary, learning curves, final results, timings and config. Several runs: the results table (short
run labels, trial numbers and states of a study's trials, saved as CSV or LaTeX), the learning curves, a bar chart
of the final results per configuration, the timings and the configs side by side.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from html import escape

from recforge.report.assets import CHART_STYLE, ERROR_RECORDER, SCRIPT, STYLE
from recforge.report.charts import bars_html, curves_html
from recforge.report.comparison import comparison, table_html, to_csv, to_latex
from recforge.report.labels import run_labels
from recforge.report.runs import Run
from recforge.report.svg import colour
from recforge.report.tables import config_table, results_table, timings_table
from recforge.report.trials import orphans


def page(runs: Sequence[Run]) -> str:
    """The whole report of ``runs`` (one run: its report; several: their comparison)."""
    colours = {run.name: colour(i) for i, run in enumerate(runs)}
    labels = {run.name: run.name for run in runs} if len(runs) == 1 else run_labels(runs)
    if len(runs) == 1:
        title = f"{runs[0].model} on {runs[0].dataset}: {runs[0].name}"
        sections = [("summary", "Summary", _summary(runs[0]))]
        curves, results = curves_html(runs, colours, labels), results_table(runs[0])
    else:
        models = ", ".join(dict.fromkeys(run.model for run in runs))
        datasets = ", ".join(dict.fromkeys(run.dataset for run in runs))
        title = f"{len(runs)} runs: {models} on {datasets}"
        sections = [("runs", "Runs", _runs_section(runs, colours, labels))]
        curves = _run_toggles(runs, colours, labels) + curves_html(runs, colours, labels)
        results = bars_html(runs, colours, labels) + _results(runs, labels)
    sections += [
        ("curves", "Learning curves", curves),
        ("results", "Final results", results),
        ("timings", "Timings", f'<div class="table-box">{timings_table(runs, labels)}</div>' + _timings_note()),
        ("config", "Config", _config_section(runs, labels)),
    ]
    nav = "".join(f'<a href="#{anchor}">{escape(heading)}</a>' for anchor, heading, _ in sections)
    body = "\n".join(f'<section id="{a}"><h2>{escape(h)}</h2>\n{content}\n</section>' for a, h, content in sections)
    generated = time.strftime("%Y-%m-%d %H:%M:%S")
    return f"""<!DOCTYPE html>
<html lang="en" data-js-errors="[]">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<script>{ERROR_RECORDER}</script>
<style>{STYLE}</style>
<style id="chart-css">{CHART_STYLE}</style>
</head>
<body>
<header><h1>{escape(title)}</h1><p class="meta">recforge run report, generated {generated}</p><nav>{nav}</nav></header>
{body}
<footer><p>Self-contained: this file needs no network. Hover a point or a bar for its value.</p></footer>
<script>{SCRIPT}</script>
</body>
</html>
"""


def _summary(run: Run) -> str:
    places = int(run.config.get("metric_decimal_place") or 4)
    score = run.best_valid_score
    best = "-" if run.best_epoch is None else str(run.best_epoch)
    if run.best_epoch is not None and not run.validates:
        best += " (no validation: the last)"
    rows = [
        ("model", escape(run.model)),
        ("data set", escape(run.dataset)),
        ("run folder", f"<code>{escape(str(run.path))}</code>"),
        ("epochs", str(run.epochs)),
        ("best epoch", best),
        (f"best {escape(str(run.valid_metric or 'valid score'))}", "-" if score is None else f"{score:.{places}f}"),
        ("seconds", f"{run.seconds('train') + run.seconds('valid'):.2f} (training and validation)"),
    ]
    if run.trial is not None:
        best = " (the study's best)" if run.trial.best else ""
        study, state = escape(run.trial.study.name), escape(run.trial.state)
        rows.append(("trial", f"#{run.trial.number} of {study}: {state}{best}"))
    finished = next((r["time"] for r in reversed(run.history) if "time" in r), None)
    if finished:
        rows.append(("last epoch ended", escape(str(finished))))
    items = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in rows)
    return f'<dl class="summary">{items}</dl>' + _notes(run)


def _notes(run: Run) -> str:
    if not run.notes:
        return ""
    return '<ul class="notes">' + "".join(f"<li>{escape(note)}</li>" for note in run.notes) + "</ul>"


def _runs_section(runs: Sequence[Run], colours: dict[str, str], labels: dict[str, str]) -> str:
    table = comparison(runs, labels)
    shared = " · ".join(f"{escape(name)} <b>{escape(value)}</b>" for name, value in table.shared)
    tools = (
        '<div class="table-tools"><span class="meta">Click a heading to sort; the best value of each metric is bold. '
        "config: keys whose values differ between the runs (bookkeeping keys such as checkpoint_dir left out); "
        "other differences: the rest of them.</span>"
        f"{_export_button('CSV', 'runs.csv', 'text/csv', to_csv(table))}"
        f"{_export_button('LaTeX', 'runs.tex', 'application/x-tex', to_latex(table))}</div>"
    )
    common = f'<p class="shared">All runs: {shared}</p>' if shared else ""
    notes = "".join(
        f'<li class="notes">{escape(labels[run.name])}: {escape(note)}</li>' for run in runs for note in run.notes
    )
    missing = orphans(run.trial for run in runs if run.trial is not None)
    if missing:
        notes += "".join(
            f'<li class="notes orphan" data-trial="{t.number}">trial {t.number} of {escape(t.study.name)}: '
            f"{escape(t.state)}, no run folder{escape(': ' + t.error if t.error else '')}</li>"
            for t in missing
        )
    box = f'<div class="table-box runs-box">{table_html(table, colours)}</div>'
    return common + tools + box + (f"<ul>{notes}</ul>" if notes else "") + _study_counts(runs, missing)


def _export_button(name: str, file: str, kind: str, text: str) -> str:
    return (
        f'<button type="button" class="export-text" data-file="{file}" data-type="{kind}" '
        f'data-text="{escape(text)}" title="save the table as {name}">{name}</button>'
    )


def _study_counts(runs: Sequence[Run], missing: Sequence) -> str:
    trials = [run.trial for run in runs if run.trial is not None] + list(missing)
    if not trials:
        return ""
    counts: dict[str, int] = {}
    for trial in trials:
        counts[trial.state] = counts.get(trial.state, 0) + 1
    shown = ", ".join(f"{n} {state}" for state, n in counts.items())
    return f'<p class="meta study-counts">Trials: {len(trials)} ({escape(shown)}).</p>'


def _run_toggles(runs: Sequence[Run], colours: dict[str, str], labels: dict[str, str]) -> str:
    boxes = "".join(
        f'<label class="run-key"><input type="checkbox" class="run-toggle" value="{escape(run.name)}" checked>'
        f'<i class="swatch" style="background:{colours[run.name]}"></i>{escape(labels[run.name])}</label>'
        for run in runs
    )
    return f'<p class="legend-runs">Show: {boxes}</p>'


def _results(runs: Sequence[Run], labels: dict[str, str]) -> str:
    return "".join(
        f"<details><summary>{escape(labels[run.name])}: {escape(run.model)} on {escape(run.dataset)}</summary>"
        f"{results_table(run)}</details>"
        for run in runs
    )


def _timings_note() -> str:
    return (
        '<p class="meta">Total: training and validation of every epoch (loading the data and the test are not '
        "included).</p>"
    )


def _config_section(runs: Sequence[Run], labels: dict[str, str]) -> str:
    which = "from the default" + ("" if len(runs) == 1 else " or between the runs")
    toggle = (
        f'<p><label><input type="checkbox" id="only-changed" checked> only the keys that differ {which}</label> '
        '<span class="meta">(highlighted: a value other than the default of the model and data set)</span></p>'
    )
    if not any(run.config for run in runs):
        return '<p class="empty">No config.yaml.</p>'
    return toggle + f'<div class="table-box">{config_table(runs, only_changed=True, labels=labels)}</div>'
