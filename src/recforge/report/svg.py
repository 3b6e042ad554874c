"""Line charts as inline SVG, drawn without any library.

The ``<svg>`` element carries its scales: ``data-x0`` / ``data-x1`` (the epoch range) map linearly to
``data-left`` / ``data-right`` (pixels), ``data-y0`` / ``data-y1`` (the value range) to ``data-bottom`` /
``data-top``. Each line is a ``<g class="series">`` with one ``<polyline>`` through all its points (and a circle
per point when there are few), each marker a ``<g class="marker" data-epoch="...">`` holding a vertical line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 440, 250
LEFT, RIGHT, TOP, BOTTOM = 62, WIDTH - 14, 30, HEIGHT - 38
MAX_CIRCLES = 80  # points per line up to which each point gets a circle (with its value as a tooltip)
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#ff9da7")


def colour(index: int) -> str:
    """A distinct colour for the ``index``-th line (the palette first, then spread hues)."""
    if index < len(PALETTE):
        return PALETTE[index]
    return f"hsl({(index * 137.5) % 360:.0f},55%,42%)"


@dataclass(frozen=True)
class Line:
    """A series to draw; ``run`` names the run it belongs to (the page shows and hides runs by it), ``key`` the
    series (``recforge.report.series``)."""

    label: str
    colour: str
    points: tuple[tuple[float, float], ...]
    run: str = ""
    key: str = ""


@dataclass(frozen=True)
class Marker:
    """A vertical mark at an epoch of a run (its best epoch); lines of the same run get a ring at that epoch."""

    epoch: int
    colour: str
    label: str
    run: str = ""
    text: str = ""  # written beside the mark (when a chart has one marker)


@dataclass(frozen=True)
class Scale:
    """A linear map from ``[low, high]`` to pixels ``[start, end]``."""

    low: float
    high: float
    start: float
    end: float

    def __call__(self, value: float) -> float:
        return round(self.start + (value - self.low) / (self.high - self.low) * (self.end - self.start), 2)


def line_chart(title: str, lines: Sequence[Line], markers: Sequence[Marker] = (), note: str = "") -> str:
    """An SVG line chart of ``lines`` over epochs, with ``markers``; ``note`` is written under the title."""
    xs = [x for line in lines for x, _ in line.points] + [m.epoch for m in markers]
    ys = [y for line in lines for _, y in line.points]
    x = Scale(*_domain(xs, integer=True), LEFT, RIGHT)
    y = Scale(*_domain(ys, integer=False), BOTTOM, TOP)
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
        f'height="{HEIGHT}" role="img" aria-label="{escape(title)}" data-x0="{x.low!r}" data-x1="{x.high!r}" '
        f'data-y0="{y.low!r}" data-y1="{y.high!r}" data-left="{LEFT}" data-right="{RIGHT}" data-top="{TOP}" '
        f'data-bottom="{BOTTOM}">',
        f"<title>{escape(title)}</title>",
        f'<text class="title" x="{LEFT}" y="16">{escape(title)}</text>',
    ]
    if note:
        parts.append(f'<text class="note" x="{RIGHT}" y="16" text-anchor="end">{escape(note)}</text>')
    parts += _axes(x, y)
    parts += [_marker(m, x, with_text=len(markers) == 1) for m in markers]
    parts += [_line(line, x, y, [m for m in markers if m.run == line.run]) for line in lines]
    if not ys:
        parts.append(f'<text class="empty" x="{(LEFT + RIGHT) / 2}" y="{(TOP + BOTTOM) / 2}">no values</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _domain(values: Sequence[float], integer: bool) -> tuple[float, float]:
    """The range drawn: the values' range with a margin (a unit wide around a single value)."""
    if not values:
        return (0.0, 1.0)
    low, high = min(values), max(values)
    if integer:
        return (low - 0.5, high + 0.5) if low == high else (float(low), float(high))
    if low == high:
        pad = abs(low) * 0.1 or 0.5
        return (low - pad, high + pad)
    pad = (high - low) * 0.06
    return (low - pad, high + pad)


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


def number(value: float) -> str:
    """A short form of a tick or a value: 4 significant digits, exponent notation for the very large or small."""
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.2e}"
    return f"{value:.4g}"


def _axes(x: Scale, y: Scale) -> list[str]:
    parts = [f'<rect class="frame" x="{LEFT}" y="{TOP}" width="{RIGHT - LEFT}" height="{BOTTOM - TOP}"/>']
    for value in ticks(y.low, y.high, integer=False):
        py = y(value)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{RIGHT}" y1="{py}" y2="{py}"/>')
        parts.append(f'<text class="tick" x="{LEFT - 5}" y="{py + 4}" text-anchor="end">{number(value)}</text>')
    for value in ticks(x.low, x.high, integer=True, count=6):
        px = x(value)
        parts.append(f'<line class="axis-tick" x1="{px}" x2="{px}" y1="{BOTTOM}" y2="{BOTTOM + 4}"/>')
        parts.append(f'<text class="tick" x="{px}" y="{BOTTOM + 16}" text-anchor="middle">{int(value)}</text>')
    middle = (LEFT + RIGHT) / 2
    parts.append(f'<text class="axis-label" x="{middle}" y="{HEIGHT - 4}" text-anchor="middle">epoch</text>')
    return parts


def _marker(marker: Marker, x: Scale, with_text: bool) -> str:
    px = x(marker.epoch)
    text = ""
    if with_text and marker.text:
        at = f'x="{px - 3}" y="{TOP + 10}" text-anchor="end" fill="{marker.colour}"'
        text = f"<text {at}>{escape(marker.text)}</text>"
    return (
        f'<g class="marker" data-run="{escape(marker.run)}" data-epoch="{marker.epoch}">'
        f"<title>{escape(marker.label)}</title>"
        f'<line x1="{px}" x2="{px}" y1="{TOP}" y2="{BOTTOM}" stroke="{marker.colour}"/>{text}</g>'
    )


def _line(line: Line, x: Scale, y: Scale, markers: Sequence[Marker]) -> str:
    coords = [(x(px), y(py)) for px, py in line.points]
    parts = [
        f'<g class="series" data-run="{escape(line.run)}" data-key="{escape(line.key)}" '
        f'data-label="{escape(line.label)}" data-points="{len(coords)}" stroke="{line.colour}" fill="{line.colour}">',
        f'<polyline points="{" ".join(f"{a},{b}" for a, b in coords)}"/>',
    ]
    if len(coords) <= MAX_CIRCLES:
        for (a, b), (epoch, value) in zip(coords, line.points, strict=True):
            tip = f"{line.label}, epoch {int(epoch)}: {value:.6g}"
            parts.append(f'<circle cx="{a}" cy="{b}" r="2.5"><title>{escape(tip)}</title></circle>')
    for marker in markers:
        for (a, b), (epoch, value) in zip(coords, line.points, strict=True):
            if epoch == marker.epoch:
                tip = f"{marker.label}: {line.label} {value:.6g}"
                parts.append(f'<circle class="best" cx="{a}" cy="{b}" r="5.5"><title>{escape(tip)}</title></circle>')
    parts.append("</g>")
    return "\n".join(parts)
