"""Line charts over epochs (``svg`` draws the frame, the axes' labels and the legend).

Each line is a ``<g class="series">`` with one ``<polyline>`` through all its points and a circle per point when
there are few; a line of one point (a model fitted in one epoch: Pop, ItemKNN) is drawn as a large dot
(``circle.single``) so that it is as visible as a line. Each mark is a ``<g class="marker" data-epoch="...">``
holding a dashed vertical line; a chart with one mark writes its text above the plot, never over the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from recforge.report.svg import BOTTOM, LEFT, RIGHT, TOP, LegendItem, Scale, domain, frame, number, ticks, y_grid

MAX_CIRCLES = 80  # points per line up to which each point gets a circle (with its value as a tooltip)


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
    text: str = ""  # written above the plot when a chart has one marker


def legend_items(lines: Sequence[Line], markers: Sequence[Marker]) -> list[LegendItem]:
    """One entry per line (a dot for a line of one point) and one for the marks (their meaning)."""
    items = [
        LegendItem(line.label, line.colour, "dot" if len(line.points) == 1 else "line", line.run) for line in lines
    ]
    if markers:
        text = markers[0].text if len(markers) == 1 else "best epoch (dashed, run colour)"
        items.append(LegendItem(text or "best epoch", markers[0].colour if len(markers) == 1 else "#777", "dash"))
    return items


def line_chart(title: str, y_label: str, lines: Sequence[Line], markers: Sequence[Marker] = (), note: str = "") -> str:
    """An SVG line chart of ``lines`` over epochs with ``markers``, titled, both axes labelled (x: "epoch"), with
    its legend; ``note`` is written at the top right."""
    xs = [x for line in lines for x, _ in line.points] + [m.epoch for m in markers]
    ys = [y for line in lines for _, y in line.points]
    x = Scale(*domain(xs, integer=True), LEFT, RIGHT)
    y = Scale(*domain(ys, integer=False), BOTTOM, TOP)
    parts = frame(title, "epoch", y_label, legend_items(lines, markers), x, y)
    if note:
        parts.append(f'<text class="note" x="{RIGHT}" y="22" text-anchor="end">{escape(note)}</text>')
    parts += y_grid(y) + _x_ticks(x)
    parts += [_marker(m, x, with_text=len(markers) == 1) for m in markers]
    parts += [_line(line, x, y, [m for m in markers if m.run == line.run]) for line in lines]
    if not ys:
        parts.append(f'<text class="empty" x="{(LEFT + RIGHT) / 2}" y="{(TOP + BOTTOM) / 2}">no values</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _x_ticks(x: Scale) -> list[str]:
    parts = []
    for value in ticks(x.low, x.high, integer=True, count=8):
        px = x(value)
        parts.append(f'<line class="axis-tick" x1="{px}" x2="{px}" y1="{BOTTOM}" y2="{BOTTOM + 4}"/>')
        parts.append(f'<text class="tick" x="{px}" y="{BOTTOM + 17}" text-anchor="middle">{int(value)}</text>')
    return parts


def _marker(marker: Marker, x: Scale, with_text: bool) -> str:
    px = x(marker.epoch)
    text = ""
    if with_text and marker.text:
        # Above the plot (between the title and the frame), kept inside the frame's width.
        anchor = "start" if px < LEFT + 60 else "end" if px > RIGHT - 60 else "middle"
        at = f'x="{px}" y="{TOP - 7}" text-anchor="{anchor}" fill="{marker.colour}"'
        text = f'<text class="marker-text" {at}>{escape(marker.text)}</text>'
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
    single = len(coords) == 1
    if len(coords) <= MAX_CIRCLES:
        for (a, b), (epoch, value) in zip(coords, line.points, strict=True):
            tip = f"{line.label}, epoch {int(epoch)}: {value:.6g}"
            css = ' class="single"' if single else ""
            parts.append(
                f'<circle{css} cx="{a}" cy="{b}" r="{6 if single else 2.5}"><title>{escape(tip)}</title></circle>'
            )
    for marker in markers:
        for (a, b), (epoch, value) in zip(coords, line.points, strict=True):
            if epoch == marker.epoch and not single:
                tip = f"{marker.label}: {line.label} {number(value)}"
                parts.append(f'<circle class="best" cx="{a}" cy="{b}" r="5.5"><title>{escape(tip)}</title></circle>')
    parts.append("</g>")
    return "\n".join(parts)
