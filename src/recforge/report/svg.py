"""What every chart of a report shares, drawn as inline SVG without any library: the scales, ticks written in one
number format per axis, the frame with its title and axis labels, and the legend inside the ``<svg>``.

A chart is legible on its own (exported, cropped or pasted into a slide): it has a title, both axes labelled
(``<text class="axis-label x">`` / ``<text class="axis-label y">``) and its own legend (``<g class="legend">``
holding one ``<g class="legend-item">`` per line, bar group or mark). The ``<svg>`` carries its plot scales:
``data-x0`` / ``data-x1`` map linearly to ``data-left`` / ``data-right`` (pixels), ``data-y0`` / ``data-y1`` to
``data-bottom`` / ``data-top``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 640  # the viewBox width; the page scales the chart to its column
LEFT, RIGHT, TOP, BOTTOM = 78, WIDTH - 20, 46, 306
LEGEND_TOP = BOTTOM + 52  # below the x tick labels and the x axis label
ROW, CHAR = 18, 6.3  # a legend row's height; a character's width at the legend's font size (estimated)
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#ff9da7")
NS = "http://www.w3.org/2000/svg"


def colour(index: int) -> str:
    """A distinct colour for the ``index``-th line (the palette first, then spread hues)."""
    if index < len(PALETTE):
        return PALETTE[index]
    return f"hsl({(index * 137.5) % 360:.0f},55%,42%)"


@dataclass(frozen=True)
class Scale:
    """A linear map from ``[low, high]`` to pixels ``[start, end]``."""

    low: float
    high: float
    start: float
    end: float

    def __call__(self, value: float) -> float:
        return round(self.start + (value - self.low) / (self.high - self.low) * (self.end - self.start), 2)


@dataclass(frozen=True)
class LegendItem:
    """One entry of a chart's legend: ``shape`` is "line", "dot" (a line of one point), "dash" (a mark),
    "bar" or "range" (a whisker); ``run`` names the run (the page hides a run's entries with its lines)."""

    label: str
    colour: str
    shape: str = "line"
    run: str = ""


def ticks(low: float, high: float, integer: bool, count: int = 5) -> list[float]:
    """Round values between ``low`` and ``high``, about ``count`` of them (whole numbers when ``integer``)."""
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if integer:
        step = max(1, round(step))
    first = math.ceil(low / step - 1e-9)
    values = []
    n = first
    while n * step <= high + 1e-9 * step:
        values.append(round(n * step, 12))
        n += 1
    return values


def _exact(values: Sequence[float], shown: Sequence[str]) -> bool:
    return all(math.isclose(float(s), v, rel_tol=1e-9, abs_tol=1e-15) for s, v in zip(shown, values, strict=True))


def tick_labels(values: Sequence[float]) -> list[str]:
    """The labels of one axis's ticks in one format: fixed point with the same number of decimals for all, or,
    when the largest is below 0.001 or from 100000 up, ``<mantissa>e<exponent>`` with the same mantissa decimals
    (``["0.00095", "0.00100", "0.00105"]``, ``["5.0e-5", "1.0e-4", "1.5e-4"]``)."""
    if not values:
        return []
    largest = max(abs(v) for v in values)
    if largest >= 1e5 or 0 < largest < 1e-3:
        for places in range(7):
            shown = [_scientific(v, places) for v in values]
            if _exact(values, shown):
                return shown
        return [_scientific(v, 6) for v in values]
    for places in range(11):
        shown = [f"{v:.{places}f}" for v in values]
        if _exact(values, shown):
            return shown
    return [f"{v:.10f}" for v in values]


def _scientific(value: float, places: int) -> str:
    if value == 0:
        return "0"
    mantissa, exponent = f"{value:.{places}e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def number(value: float) -> str:
    """A short form of a single value (a tooltip, a label): 4 significant digits, exponent notation for the very
    large or small."""
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return _scientific(value, 2)
    return f"{value:.4g}"


def fit(text: str, width: float) -> str:
    """``text`` cut (with "…") to what fits in ``width`` pixels at the legend's font size."""
    most = max(4, int(width / CHAR))
    return text if len(text) <= most else text[: most - 1] + "…"


def legend_layout(items: Sequence[LegendItem]) -> list[tuple[float, float, str]]:
    """Where each legend entry goes, ``(x, y, shown label)``: entries flow left to right in rows across the chart,
    each label cut to the row's width."""
    placed, x, y = [], 12.0, float(LEGEND_TOP)
    for item in items:
        label = fit(item.label, WIDTH - 24 - 28)
        width = 28 + len(label) * CHAR + 18
        if x > 12 and x + width > WIDTH - 12:
            x, y = 12.0, y + ROW
        placed.append((x, y, label))
        x += width
    return placed


def height(items: Sequence[LegendItem]) -> int:
    """The chart's height with its legend."""
    rows = len({y for _, y, _ in legend_layout(items)}) or 1
    return LEGEND_TOP + rows * ROW


def legend(items: Sequence[LegendItem]) -> str:
    """The legend: a swatch (a line, a dot, a dashed line or a block, in the entry's colour) and a label each."""
    parts = ['<g class="legend">']
    for item, (x, y, label) in zip(items, legend_layout(items), strict=True):
        swatch = {
            "line": f'<line x1="{x}" x2="{x + 22}" y1="{y}" y2="{y}" stroke="{item.colour}" stroke-width="2"/>',
            "dot": f'<circle cx="{x + 11}" cy="{y}" r="5" fill="{item.colour}" stroke="#fff" stroke-width="1.5"/>',
            "dash": f'<line class="dash" x1="{x}" x2="{x + 22}" y1="{y}" y2="{y}" stroke="{item.colour}"/>',
            "bar": f'<rect x="{x + 4}" y="{y - 6}" width="14" height="12" fill="{item.colour}"/>',
            "range": f'<path class="whisker" d="M{x + 7} {y - 6}h8M{x + 11} {y - 6}v12M{x + 7} {y + 6}h8" '
            f'stroke="{item.colour}"/>',
        }[item.shape]
        run = f' data-run="{escape(item.run)}"' if item.run else ""
        parts.append(
            f'<g class="legend-item"{run}>{swatch}<text x="{x + 28}" y="{y + 4}">{escape(label)}'
            f"<title>{escape(item.label)}</title></text></g>"
        )
    parts.append("</g>")
    return "".join(parts)


def frame(title: str, x_label: str, y_label: str, items: Sequence[LegendItem], x: Scale, y: Scale) -> list[str]:
    """The opening of a chart: the ``<svg>`` with its scales, the title, the axis labels and the legend (the
    caller adds the plot and ``</svg>``)."""
    tall = height(items)
    return [
        f'<svg class="chart" xmlns="{NS}" viewBox="0 0 {WIDTH} {tall}" width="{WIDTH}" height="{tall}" role="img" '
        f'aria-label="{escape(title)}" data-x0="{x.low!r}" data-x1="{x.high!r}" data-y0="{y.low!r}" '
        f'data-y1="{y.high!r}" data-left="{LEFT}" data-right="{RIGHT}" data-top="{TOP}" data-bottom="{BOTTOM}">',
        f"<title>{escape(title)}</title>",
        f'<rect class="background" x="0" y="0" width="{WIDTH}" height="{tall}"/>',
        f'<text class="title" x="12" y="22">{escape(title)}</text>',
        f'<rect class="frame" x="{LEFT}" y="{TOP}" width="{RIGHT - LEFT}" height="{BOTTOM - TOP}"/>',
        f'<text class="axis-label x" x="{(LEFT + RIGHT) / 2}" y="{BOTTOM + 38}" text-anchor="middle">'
        f"{escape(x_label)}</text>",
        f'<text class="axis-label y" transform="translate(16 {(TOP + BOTTOM) / 2}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>',
        legend(items),
    ]


def y_grid(y: Scale) -> list[str]:
    """Horizontal grid lines with the value ticks (one number format, ``tick_labels``)."""
    values = ticks(y.low, y.high, integer=False)
    parts = []
    for value, shown in zip(values, tick_labels(values), strict=True):
        py = y(value)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{RIGHT}" y1="{py}" y2="{py}"/>')
        parts.append(f'<text class="tick" x="{LEFT - 6}" y="{py + 4}" text-anchor="end">{shown}</text>')
    return parts


def domain(values: Sequence[float], integer: bool, zero: bool = False) -> tuple[float, float]:
    """The range drawn: the values' range with a margin (a unit wide around a single value); ``zero``: from 0
    (bars), with a margin above only."""
    if not values:
        return (0.0, 1.0)
    low, high = min(values), max(values)
    if zero:
        low, high = min(low, 0.0), max(high, 0.0)
        pad = (high - low) * 0.08 or 1.0
        return (low - pad if low < 0 else 0.0, high + pad if high > 0 or low == 0 else 0.0)
    if integer:  # a margin, so that the first and last points are not drawn on the frame
        pad = 0.5 if low == high else (high - low) * 0.03
        return (low - pad, high + pad)
    if low == high:
        pad = abs(low) * 0.1 or 0.5
        return (low - pad, high + pad)
    pad = (high - low) * 0.06
    return (low - pad, high + pad)
