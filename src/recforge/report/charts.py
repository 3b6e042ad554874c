"""The charts of a report: the learning curves grouped by kind (loss, validation, learning rate, seconds) and, in
a comparison, the bar chart of the final results per configuration.

One run: the loss chart holds the total and each objective's loss, each objective with parts gets a chart of its
parts, the validation metrics are charted by family (``recall@5`` and ``recall@10`` together), the learning rates
of all optimizers together, and the seconds of training and validation together. Several runs: one chart per
series, one line per run in the run's colour, named by its short label. A chart marks the best epoch of each run
drawn in it (the last epoch of a run without validation). Every chart sits in a ``<figure class="chart-box">``
with buttons that save it as SVG or PNG.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

from recforge.report.bars import BarGroup, bar_chart, chunks
from recforge.report.labels import configurations
from recforge.report.lines import Line, Marker, line_chart
from recforge.report.runs import Run
from recforge.report.series import KINDS, TITLES, Series, run_series, title, y_label
from recforge.report.svg import colour

SINGLE_MARKER_COLOUR = "#555"


@dataclass(frozen=True)
class Chart:
    """One line chart to draw: its series keys, lines and markers."""

    kind: str
    title: str
    y_label: str
    keys: tuple[str, ...]
    lines: tuple[Line, ...]
    markers: tuple[Marker, ...]
    dropped: int = 0

    def svg(self) -> str:
        note = f"{self.dropped} non-finite value(s) not drawn" if self.dropped else ""
        return line_chart(self.title, self.y_label, self.lines, self.markers, note)


def charts(runs: Sequence[Run], colours: Mapping[str, str], labels: Mapping[str, str]) -> list[Chart]:
    """The line charts of ``runs`` (``colours`` and ``labels`` by run name, used when there are several), in the
    order of ``series.KINDS``."""
    every = {run.name: run_series(run.history) for run in runs}
    if len(runs) == 1:
        (run,) = runs
        return _single(run, every[run.name])
    keys = list(dict.fromkeys(key for series in every.values() for key in series))
    keys.sort(key=lambda key: KINDS.index(key.split(":", 1)[0]))
    found = []
    for key in keys:
        kind, name = key.split(":", 1)
        lines, markers, dropped = [], [], 0
        for run in runs:
            series = every[run.name].get(key)
            if series is None:
                continue  # neither a line nor a best epoch for a run without this series
            lines.append(Line(labels[run.name], colours[run.name], series.points, run.name, key))
            dropped += series.dropped
            if run.best_epoch is not None:
                markers.append(_marker(run, colours[run.name]))
        found.append(Chart(kind, title(kind, name), y_label(kind, name), (key,), tuple(lines), tuple(markers), dropped))
    return found


def _single(run: Run, series: dict[str, Series]) -> list[Chart]:
    groups: dict[tuple[str, str, str], list[str]] = {}
    for key, one in series.items():
        groups.setdefault((one.kind, *_group(one, series)), []).append(key)
    markers = (_marker(run, SINGLE_MARKER_COLOUR),) if run.best_epoch is not None else ()
    found = []
    for (kind, heading, axis), keys in groups.items():
        lines = tuple(
            Line(series[key].name, colour(i), series[key].points, run.name, key) for i, key in enumerate(keys)
        )
        dropped = sum(series[key].dropped for key in keys)
        found.append(Chart(kind, heading, axis, tuple(keys), lines, markers, dropped))
    return found


def _group(one: Series, series: Mapping[str, Series]) -> tuple[str, str]:
    """The chart (title, y label) a series of a single run goes to."""
    name = one.name
    if one.kind == "loss" and name.endswith("]"):
        return title("loss", f"{name[: name.rindex('[')]}, by part"), "loss"
    if one.kind == "valid":
        family = name.split("@")[0]
        members = [s for s in series.values() if s.kind == "valid" and s.name.split("@")[0] == family]
        shown = name if len(members) == 1 else f"{family}@k" if "@" in name else family
        return title("valid", shown), y_label("valid", shown)
    return TITLES[one.kind], y_label(one.kind)


def _marker(run: Run, stroke: str) -> Marker:
    best = run.best_epoch
    what = "best epoch" if run.validates else "last epoch (no validation)"
    return Marker(best, stroke, f"{run.name}: {what} {best}", run.name, f"{what} {best}")


def figure(svg: str, name: str, keys: str = "") -> str:
    """A chart in its box, with the buttons that save it (``name``: the file name without suffix)."""
    slug = "-".join("".join(c if c.isalnum() or c == "@" else " " for c in name.lower()).split()) or "chart"
    return (
        f'<figure class="chart-box" data-keys="{escape(keys)}" data-name="{escape(slug)}">'
        '<div class="tools"><button type="button" class="export-svg" title="save this chart as SVG">SVG</button>'
        '<button type="button" class="export-png" title="save this chart as PNG">PNG</button></div>'
        f"{svg}</figure>"
    )


def curves_html(runs: Sequence[Run], colours: Mapping[str, str], labels: Mapping[str, str]) -> str:
    """The curves section: the charts by kind, each in its box."""
    found = charts(runs, colours, labels)
    if not found:
        return '<p class="empty">No epochs recorded.</p>'
    parts = []
    for kind in KINDS:
        figures = [chart for chart in found if chart.kind == kind]
        if figures:
            parts.append(f'<h3>{escape(TITLES[kind].capitalize())}</h3><div class="charts">')
            parts += [figure(chart.svg(), chart.title, " ".join(chart.keys)) for chart in figures]
            parts.append("</div>")
    return "\n".join(parts)


def result_source(runs: Sequence[Run]) -> tuple[str, str]:
    """Which final results a comparison charts: ("test_result", "test results") when any run has one, else the
    best validation results (a study's trials evaluate no test data)."""
    if any(run.metrics.get("test_result") for run in runs):
        return "test_result", "test results"
    return "best_valid_result", "best validation results"


def bars_html(runs: Sequence[Run], colours: Mapping[str, str], labels: Mapping[str, str]) -> str:
    """The bar chart(s) of the final results per configuration (the spread over seeds where runs share one)."""
    field, what = result_source(runs)
    metrics = list(dict.fromkeys(m for run in runs for m in run.metrics.get(field) or {}))
    if not metrics:
        return '<p class="empty">No final results to chart.</p>'
    groups = []
    for config in configurations(runs, colours):
        values: dict[str, list[float]] = {}
        for run in config.runs:
            for metric, value in (run.metrics.get(field) or {}).items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    values.setdefault(metric, []).append(float(value))
        if values:
            groups.append(BarGroup(config.label, config.colour, values))
    parts = []
    for i, part in enumerate(chunks(metrics, len(groups))):
        heading = what if i == 0 else f"{what} (continued)"
        parts.append(figure(bar_chart(heading, part, groups), f"{what}-{i + 1}"))
    missing = [labels[run.name] for run in runs if not run.metrics.get(field)]
    note = f'<p class="meta">Without {escape(what)}: {escape(", ".join(missing))}.</p>' if missing else ""
    return f'<div class="charts">{"".join(parts)}</div>{note}'
