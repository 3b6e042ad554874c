"""The learning curves of a report, grouped by kind (loss, validation, learning rate, seconds).

One run: the loss chart holds the total and each objective's loss, each objective with parts gets a chart of its
parts, the validation metrics are charted by family (``recall@5`` and ``recall@10`` together), the learning rates
of all optimizers together, and the seconds of training and validation together; lines are told apart by colour.
Several runs: one chart per series, one line per run in the run's colour. Every chart marks each run's best epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from recforge.report.runs import Run
from recforge.report.series import KINDS, TITLES, Series, label, run_series
from recforge.report.svg import Line, Marker, colour, line_chart

SINGLE_MARKER_COLOUR = "#555"


@dataclass(frozen=True)
class Chart:
    """One chart to draw: its series keys, lines and markers."""

    kind: str
    title: str
    keys: tuple[str, ...]
    lines: tuple[Line, ...]
    markers: tuple[Marker, ...]
    dropped: int = 0

    def svg(self) -> str:
        note = f"{self.dropped} non-finite value(s) not drawn" if self.dropped else ""
        return line_chart(self.title, self.lines, self.markers, note)


def charts(runs: Sequence[Run], colours: dict[str, str]) -> list[Chart]:
    """The charts of ``runs`` (``colours`` by run name, used when there are several), in the order of
    ``series.KINDS``."""
    every = {run.name: run_series(run.history) for run in runs}
    if len(runs) == 1:
        (run,) = runs
        return _single(run, every[run.name])
    keys = list(dict.fromkeys(key for series in every.values() for key in series))
    keys.sort(key=lambda key: KINDS.index(key.split(":", 1)[0]))
    found = []
    for key in keys:
        lines, dropped = [], 0
        for run in runs:
            series = every[run.name].get(key)
            if series is not None:
                lines.append(Line(run.name, colours[run.name], series.points, run.name, key))
                dropped += series.dropped
        markers = [_marker(run, colours[run.name]) for run in runs if run.best_epoch is not None]
        found.append(Chart(key.split(":", 1)[0], label(key), (key,), tuple(lines), tuple(markers), dropped))
    return found


def _single(run: Run, series: dict[str, Series]) -> list[Chart]:
    groups: dict[tuple[str, str], list[str]] = {}
    for key, one in series.items():
        groups.setdefault((one.kind, _group(one)), []).append(key)
    markers = (_marker(run, SINGLE_MARKER_COLOUR),) if run.best_epoch is not None else ()
    found = []
    for (kind, title), keys in groups.items():
        lines = tuple(
            Line(series[key].name, colour(i), series[key].points, run.name, key) for i, key in enumerate(keys)
        )
        dropped = sum(series[key].dropped for key in keys)
        found.append(Chart(kind, title, tuple(keys), lines, markers, dropped))
    return found


def _group(series: Series) -> str:
    """The chart a series of a single run goes to."""
    name = series.name
    if series.kind == "loss":
        return f"loss parts: {name[: name.rindex('[')]}" if name.endswith("]") else TITLES["loss"]
    if series.kind == "valid":
        return f"validation: {name.split('@')[0]}"
    return TITLES[series.kind]


def _marker(run: Run, stroke: str) -> Marker:
    best = run.best_epoch
    what = "best epoch" if run.validates else "last epoch (no validation)"
    return Marker(best, stroke, f"{run.name}: {what} {best}", run.name, "best" if run.validates else "last")


def curves_html(runs: Sequence[Run], colours: dict[str, str]) -> str:
    """The curves section: the charts by kind, each in a ``<figure>`` with a legend when it has several lines
    and there is one run (several runs share the page's legend of runs)."""
    found = charts(runs, colours)
    if not found:
        return '<p class="empty">No epochs recorded.</p>'
    parts = []
    for kind in KINDS:
        figures = [chart for chart in found if chart.kind == kind]
        if not figures:
            continue
        parts.append(f'<h3>{escape(TITLES[kind].capitalize())}</h3><div class="charts">')
        for chart in figures:
            legend = ""
            if len(runs) == 1 and len(chart.lines) > 1:
                items = "".join(
                    f'<span class="key"><i style="background:{line.colour}"></i>{escape(line.label)}</span>'
                    for line in chart.lines
                )
                legend = f'<figcaption class="legend">{items}</figcaption>'
            keys = escape(" ".join(chart.keys))
            parts.append(f'<figure class="chart-box" data-keys="{keys}">{chart.svg()}{legend}</figure>')
        parts.append("</div>")
    return "\n".join(parts)
