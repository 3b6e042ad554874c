"""What the comparison scripts share: scenarios of runs, their records, and the cells and target rows of the
report."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass
class Run:
    """One system's command in a scenario."""

    label: str
    system: str  # recforge | recbole | floor
    args: list[str]


@dataclass
class Scenario:
    name: str
    title: str
    runs: list[Run]
    repeats: int | None = None  # None: the --repeats value
    vary_seed: bool = False
    timeout: int = 1800
    records: dict[str, list[dict]] = field(default_factory=dict)


def med(records: list[dict], key: str) -> float | None:
    values = [r[key] for r in records if isinstance(r.get(key), (int, float))]
    return statistics.median(values) if values else None


def cell(records: list[dict], key: str, unit: str = "s") -> str:
    values = [r[key] for r in records if isinstance(r.get(key), (int, float))]
    if not values:
        return "—"
    places = 0 if unit == "MB" else (3 if statistics.median(values) < 1 else 2)
    text = f"{statistics.median(values):.{places}f}"
    if len(values) > 1:
        text += f" ({min(values):.{places}f}–{max(values):.{places}f})"
    return text


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a is not None and b else "—"


def target_row(
    what: str, value: float | None, limit: float, note: str = "", floor: float | None = None, at_least: bool = False
) -> str:
    """A targets-table row (value <= limit, or >= with ``at_least``); ``floor`` is the same ratio for the
    raw-PyTorch floor, where it applies."""
    floor_text = f"{floor:.2f}" if floor is not None else ""
    sign = "≥" if at_least else "≤"
    if value is None:
        return f"| {what} | {sign} {limit:g} | not measured | — | {floor_text} | {note} |"
    met = "met" if (value >= limit if at_least else value <= limit) else "**missed**"
    return f"| {what} | {sign} {limit:g} | {value:.2f} | {met} | {floor_text} | {note} |"


def records_of(by_name: dict[str, Scenario], scenario: str, label: str) -> list[dict]:
    found = by_name.get(scenario)
    return [r for r in (found.records.get(label, []) if found else []) if "error" not in r]


def report_row(what: str, value: float | None, note: str) -> str:
    """A targets-table row that only reports a measurement."""
    return f"| {what} | — | {'not measured' if value is None else f'{value:.2f}'} | | | {note} |"


def metric(records: list[dict], key: str) -> float | None:
    values = [r["metrics"][key] for r in records if key in (r.get("metrics") or {})]
    return statistics.median(values) if values else None


def div(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None
