"""Bar charts of final results: one slot per metric, one bar per configuration in its colour. A configuration of
several runs (the same config, other seeds) is drawn as the mean of its runs with a whisker from the smallest to the
largest value and a dot per run; a configuration of one run as its value.

Each bar is a ``<g class="bar" data-metric data-label data-mean data-min data-max data-n>`` holding its ``<rect>``
and, with several runs, a ``<path class="whisker">`` and a ``<circle class="seed">`` per run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

from recforge.report.svg import BOTTOM, LEFT, RIGHT, TOP, LegendItem, Scale, domain, fit, frame, number, y_grid

MAX_BARS = 48  # bars per chart; more metrics go to further charts


@dataclass(frozen=True)
class BarGroup:
    """A configuration's values per metric (one value per run)."""

    label: str
    colour: str
    values: Mapping[str, Sequence[float]]


def chunks(metrics: Sequence[str], groups: int) -> list[list[str]]:
    """``metrics`` split so that a chart holds at most ``MAX_BARS`` bars (at least one metric per chart)."""
    per_chart = max(1, MAX_BARS // max(1, groups))
    return [list(metrics[i : i + per_chart]) for i in range(0, len(metrics), per_chart)]


def bar_chart(title: str, metrics: Sequence[str], groups: Sequence[BarGroup]) -> str:
    """An SVG bar chart of ``groups`` over ``metrics``: titled, the x axis "metric", the y axis "value", with its
    legend (each configuration, and what a whisker means when one is drawn)."""
    values = [v for group in groups for m in metrics for v in group.values.get(m, ())]
    x = Scale(0.0, float(len(metrics)), LEFT, RIGHT)
    y = Scale(*domain(values, integer=False, zero=True), BOTTOM, TOP)
    items = [LegendItem(group.label, group.colour, "bar") for group in groups]
    if any(len(group.values.get(m, ())) > 1 for group in groups for m in metrics):
        items.append(LegendItem("mean of a configuration's runs; whisker: min–max, dots: the runs", "#333", "range"))
    parts = frame(title, "metric", "value", items, x, y)
    parts += y_grid(y)
    slot = (RIGHT - LEFT) / max(1, len(metrics))
    width = slot * 0.8 / max(1, len(groups))
    for i, metric in enumerate(metrics):
        middle = x(i + 0.5)
        name = escape(fit(metric, slot))
        parts.append(f'<text class="tick" x="{middle}" y="{BOTTOM + 17}" text-anchor="middle">{name}</text>')
        for j, group in enumerate(groups):
            found = group.values.get(metric, ())
            if found:
                left = round(x(i) + slot * 0.1 + j * width, 2)
                parts.append(_bar(metric, group, list(found), left, width, y))
    if not values:
        parts.append(f'<text class="empty" x="{(LEFT + RIGHT) / 2}" y="{(TOP + BOTTOM) / 2}">no values</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _bar(metric: str, group: BarGroup, found: list[float], left: float, width: float, y: Scale) -> str:
    mean = sum(found) / len(found)
    low, high = min(found), max(found)
    top, base = y(mean), y(0.0)
    tip = f"{group.label}, {metric}: {number(mean)}"
    if len(found) > 1:
        tip += f" (mean of {len(found)} runs, {number(low)} to {number(high)})"
    parts = [
        f'<g class="bar" data-metric="{escape(metric)}" data-label="{escape(group.label)}" data-mean="{mean!r}" '
        f'data-min="{low!r}" data-max="{high!r}" data-n="{len(found)}">',
        f'<rect x="{left}" y="{min(top, base)}" width="{round(width * 0.92, 2)}" height="{round(abs(base - top), 2)}" '
        f'fill="{group.colour}"><title>{escape(tip)}</title></rect>',
    ]
    if len(found) > 1:
        middle, cap = round(left + width * 0.46, 2), round(min(6.0, width * 0.3), 2)
        path = f"M{middle - cap} {y(high)}h{2 * cap}M{middle} {y(high)}V{y(low)}M{middle - cap} {y(low)}h{2 * cap}"
        parts.append(f'<path class="whisker" d="{path}"/>')
        parts += [f'<circle class="seed" cx="{middle}" cy="{y(v)}" r="2.2"/>' for v in found]
    parts.append("</g>")
    return "".join(parts)
