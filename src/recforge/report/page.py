"""The report page: one self-contained HTML document (inline CSS, inline SVG, a little inline JavaScript for
sorting tables and showing / hiding things; nothing is fetched).

The page records script errors in the ``data-js-errors`` attribute of ``<html>`` (a JSON list) and sets
``data-report-ready="1"`` there when its script has run to the end.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from html import escape

from recforge.report.charts import curves_html
from recforge.report.runs import Run
from recforge.report.svg import colour
from recforge.report.tables import config_table, results_table, runs_table, timings_table

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; margin: 0 auto;
       max-width: 1600px; padding: 0 24px 48px; }
h1 { font-size: 22px; margin: 20px 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; }
h3 { font-size: 15px; margin: 16px 0 6px; color: #444; }
.meta, .empty, footer { color: #666; } .notes { color: #a33; }
nav a { margin-right: 14px; }
dl.summary { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; margin: 8px 0; }
dl.summary dt { color: #666; } dl.summary dd { margin: 0; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
figure.chart-box { margin: 0; border: 1px solid #e3e3e3; border-radius: 4px; padding: 4px; }
svg.chart { display: block; font-size: 10px; }
svg.chart .title { font-size: 12px; font-weight: 600; fill: #333; } svg.chart .note { fill: #a33; }
svg.chart .frame { fill: none; stroke: #bbb; } svg.chart .grid { stroke: #eee; }
svg.chart .axis-tick { stroke: #999; } svg.chart .tick, svg.chart .axis-label, svg.chart .empty { fill: #666; }
svg.chart polyline { fill: none; stroke-width: 1.6; } svg.chart .series circle { stroke: none; }
svg.chart .series circle.best { fill: none; stroke-width: 1.8; }
svg.chart .marker line { stroke-dasharray: 4 3; stroke-width: 1.2; }
.hidden { display: none; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 12px; font-size: 12px; max-width: 440px; padding: 2px 6px; }
.key i, .swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 4px;
                  vertical-align: -1px; }
label.run-key { margin-right: 14px; white-space: nowrap; }
table { border-collapse: collapse; margin: 6px 0; font-size: 13px; }
th, td { border-bottom: 1px solid #eee; padding: 3px 10px; text-align: left; vertical-align: top; }
thead th { border-bottom: 2px solid #ccc; background: #fafafa; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.sortable thead th { cursor: pointer; } table.sortable th[aria-sort=ascending]::after { content: " \\25b2"; }
table.sortable th[aria-sort=descending]::after { content: " \\25bc"; }
.scroll { overflow-x: auto; }
table.runs td:first-child { white-space: nowrap; }
td.params { min-width: 320px; max-width: 520px; font-family: ui-monospace, monospace; font-size: 12px; }
table.config td { font-family: ui-monospace, monospace; font-size: 12px; max-width: 520px; word-break: break-word; }
table.config tr.changed th { background: #fff4d6; } table.config td.changed { background: #ffe7a8; font-weight: 600; }
table.config tr.varies th { box-shadow: inset 3px 0 #4e79a7; } table.config td.default { color: #888; }
table.config.only-changed tr:not(.changed):not(.varies) { display: none; }
"""

# Runs first, before anything else can fail: every error goes into <html data-js-errors>.
ERROR_RECORDER = """
(function () {
  var root = document.documentElement, errors = [];
  function record(message) {
    errors.push(String(message));
    root.setAttribute('data-js-errors', JSON.stringify(errors));
  }
  window.addEventListener('error', function (event) { record(event.message || 'error'); });
  window.addEventListener('unhandledrejection', function (event) { record('unhandled rejection: ' + event.reason); });
  var original = console.error;
  console.error = function () {
    record(Array.prototype.join.call(arguments, ' '));
    original.apply(console, arguments);
  };
})();
"""

SCRIPT = """
(function () {
  function value(cell, numeric) {
    var raw = cell.getAttribute('data-value');
    if (numeric) { return raw === null ? NaN : parseFloat(raw); }
    return (raw !== null ? raw : cell.textContent).toLowerCase();
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    var headers = table.querySelectorAll('thead th');
    headers.forEach(function (th, index) {
      th.addEventListener('click', function () {
        var numeric = th.getAttribute('data-sort') === 'number';
        var ascending = th.getAttribute('aria-sort') !== 'ascending';
        headers.forEach(function (other) { other.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
        var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = value(a.cells[index], numeric), y = value(b.cells[index], numeric);
          if (numeric && (isNaN(x) || isNaN(y))) { return isNaN(x) - isNaN(y); }
          return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1);
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  });
  var only = document.getElementById('only-changed'), config = document.querySelector('table.config');
  if (only && config) {
    only.addEventListener('change', function () { config.classList.toggle('only-changed', only.checked); });
  }
  document.querySelectorAll('input.run-toggle').forEach(function (box) {
    box.addEventListener('change', function () {
      document.querySelectorAll('svg.chart [data-run]').forEach(function (element) {
        if (element.getAttribute('data-run') === box.value) { element.classList.toggle('hidden', !box.checked); }
      });
    });
  });
  document.documentElement.setAttribute('data-report-ready', '1');
})();
"""


def page(runs: Sequence[Run]) -> str:
    """The whole report of ``runs`` (one run: its report; several: their comparison)."""
    colours = {run.name: colour(i) for i, run in enumerate(runs)}
    single = len(runs) == 1
    if single:
        title = f"{runs[0].model} on {runs[0].dataset}: {runs[0].name}"
        sections = [("summary", "Summary", _summary(runs[0]))]
    else:
        models = ", ".join(dict.fromkeys(run.model for run in runs))
        datasets = ", ".join(dict.fromkeys(run.dataset for run in runs))
        title = f"{len(runs)} runs: {models} on {datasets}"
        sections = [("runs", "Runs", _runs_section(runs, colours))]
    sections += [
        ("curves", "Learning curves", ("" if single else _run_toggles(runs, colours)) + curves_html(runs, colours)),
        ("results", "Final results", _results(runs)),
        ("timings", "Timings", timings_table(runs) + _timings_note()),
        ("config", "Config", _config_section(runs)),
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
</head>
<body>
<header><h1>{escape(title)}</h1><p class="meta">recforge run report, generated {generated}</p><nav>{nav}</nav></header>
{body}
<footer><p>Self-contained: this file needs no network. Hover a point for its value.</p></footer>
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
    finished = next((r["time"] for r in reversed(run.history) if "time" in r), None)
    if finished:
        rows.append(("last epoch ended", escape(str(finished))))
    items = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in rows)
    return f'<dl class="summary">{items}</dl>' + _notes(run)


def _notes(run: Run) -> str:
    if not run.notes:
        return ""
    return '<ul class="notes">' + "".join(f"<li>{escape(note)}</li>" for note in run.notes) + "</ul>"


def _runs_section(runs: Sequence[Run], colours: dict[str, str]) -> str:
    notes = "".join(f'<li class="notes">{escape(run.name)}: {escape(note)}</li>' for run in runs for note in run.notes)
    help_text = (
        '<p class="meta">Click a column heading to sort. "differing keys": the config keys whose values differ '
        "between the runs.</p>"
    )
    return help_text + f'<div class="scroll">{runs_table(runs, colours)}</div>' + (f"<ul>{notes}</ul>" if notes else "")


def _run_toggles(runs: Sequence[Run], colours: dict[str, str]) -> str:
    boxes = "".join(
        f'<label class="run-key"><input type="checkbox" class="run-toggle" value="{escape(run.name)}" checked>'
        f'<i class="swatch" style="background:{colours[run.name]}"></i>{escape(run.name)}</label>'
        for run in runs
    )
    return f'<p class="legend-runs">{boxes}</p><p class="meta">Dashed lines: each run\'s best epoch.</p>'


def _results(runs: Sequence[Run]) -> str:
    if len(runs) == 1:
        return results_table(runs[0])
    return "".join(
        f"<details><summary>{escape(run.name)}: {escape(run.model)} on {escape(run.dataset)}</summary>"
        f"{results_table(run)}</details>"
        for run in runs
    )


def _timings_note() -> str:
    return (
        '<p class="meta">Total: training and validation of every epoch (loading the data and the test are not '
        "included).</p>"
    )


def _config_section(runs: Sequence[Run]) -> str:
    which = "from the default" + ("" if len(runs) == 1 else " or between the runs")
    toggle = (
        f'<p><label><input type="checkbox" id="only-changed" checked> only the keys that differ {which}</label> '
        '<span class="meta">(highlighted: a value other than the default of the model and data set)</span></p>'
    )
    if not any(run.config for run in runs):
        return '<p class="empty">No config.yaml.</p>'
    return toggle + f'<div class="scroll">{config_table(runs, only_changed=True)}</div>'
