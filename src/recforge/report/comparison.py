"""The results table of a comparison, as experiment trackers show it: one row per run, named by its short label,
with its trial number and state when it is a study's trial, the config keys that differ between the runs, the best
validation score, every test metric, epochs and seconds. The same table is written as HTML (sortable, the label
column frozen), CSV (exact values, for analysis) and LaTeX (booktabs, the values as shown, for papers).

A column whose value is the same for every run (model, data set, valid metric) is not a column: the line above the
table names it. The best value of each metric column is marked (bold in LaTeX).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from recforge.config.checks import SMALLER_IS_BETTER
from recforge.report.labels import differing_keys
from recforge.report.runs import Run
from recforge.report.tables import plain

MAX_KEY_COLUMNS = 4  # differing keys with a column of their own; the others share "other differences"
SHARED = ("model", "dataset", "valid metric")


@dataclass(frozen=True)
class Column:
    """A column: ``kind`` is "label", "text", "param" (a config key, ``key``), "int", "metric" or "seconds";
    ``better`` is "max" or "min" for a metric whose best value is marked ("" for none); ``group`` is written above
    the name in the page ("test", "best valid", "config") and before it in the title ("test recall@10")."""

    name: str
    kind: str
    key: str = ""
    better: str = ""
    group: str = ""

    @property
    def title(self) -> str:
        return f"{self.group} {self.name}".strip()

    @property
    def numeric(self) -> bool:
        return self.kind in ("int", "metric", "seconds")


@dataclass(frozen=True)
class Table:
    """The comparison: ``rows`` hold raw values (None where a run has none) in ``columns`` order, one per run;
    ``shared`` the values common to every run (name, value); ``places`` the decimals of the metrics."""

    columns: tuple[Column, ...]
    rows: tuple[tuple[Any, ...], ...]
    runs: tuple[Run, ...]
    shared: tuple[tuple[str, str], ...]
    places: int


def _better(metric: str) -> str:
    return "min" if metric.partition("@")[0].lower() in SMALLER_IS_BETTER else "max"


def _key_columns(runs: Sequence[Run]) -> tuple[list[str], list[str]]:
    """The differing keys with a column (scalars, those most runs have first) and the rest."""
    keys = differing_keys(runs, exclude={"valid_metric"})  # the valid metric has its column or is common
    scalar = [k for k in keys if all(not isinstance(run.config.get(k), (dict, list)) for run in runs)]
    scalar.sort(key=lambda k: -sum(k in run.config for run in runs))
    columns = scalar[:MAX_KEY_COLUMNS]
    return columns, [k for k in keys if k not in columns]


def _columns(runs: Sequence[Run], shared: Mapping[str, str]) -> list[Column]:
    tests = list(dict.fromkeys(m for run in runs for m in run.metrics.get("test_result") or {}))
    keys, others = _key_columns(runs)
    metric = shared.get("valid metric")
    columns = [Column("run", "label")]
    if any(run.trial is not None for run in runs):
        columns += [Column("trial", "int"), Column("state", "text")]
    columns += [Column(name, "text") for name in SHARED if name not in shared]
    columns += [Column(key, "param", key, group="config") for key in keys]
    # Scores of different valid metrics (MRR@10 and AUC) are not compared: no best marked then.
    columns.append(Column(metric or "", "metric", "valid", _better(metric) if metric else "", "best valid"))
    columns += [Column(m, "metric", m, _better(m), "test") for m in tests]
    columns += [Column("epochs run", "int"), Column("best epoch", "int"), Column("seconds", "seconds")]
    return columns + ([Column("other differences", "text", ",".join(others))] if others else [])


def _cell(column: Column, run: Run, label: str) -> Any:
    """The raw value of ``run`` in ``column``."""
    if column.kind == "param":
        return run.config.get(column.key)
    if column.kind == "metric":
        return run.best_valid_score if column.key == "valid" else (run.metrics.get("test_result") or {}).get(column.key)
    if column.title == "other differences":
        return ", ".join(f"{k}={plain(run.config[k])}" for k in column.key.split(",") if k in run.config)
    trial = run.trial
    values = {
        "run": label,
        "trial": trial.number if trial else None,
        "state": trial.state if trial else None,
        "model": run.model,
        "dataset": run.dataset,
        "valid metric": str(run.valid_metric or "-"),
        "epochs run": run.epochs,
        "best epoch": run.best_epoch,
        "seconds": run.seconds("train") + run.seconds("valid"),
    }
    return values[column.title]


def comparison(runs: Sequence[Run], labels: Mapping[str, str]) -> Table:
    """The comparison table of ``runs`` (``labels`` by run name)."""
    candidates = {
        "model": [r.model for r in runs],
        "dataset": [r.dataset for r in runs],
        "valid metric": [str(r.valid_metric or "-") for r in runs],
    }
    shared = {n: v[0] for n, v in candidates.items() if len(runs) > 1 and len(set(v)) == 1}
    columns = _columns(runs, shared)
    rows = tuple(tuple(_cell(c, run, labels[run.name]) for c in columns) for run in runs)
    places = int(runs[0].config.get("metric_decimal_place") or 4) if runs else 4
    return Table(tuple(columns), rows, tuple(runs), tuple(shared.items()), places)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def shown(column: Column, value: Any, places: int) -> str:
    """A cell's text as the page and the LaTeX table show it ("-" for a missing value)."""
    if value is None or value == "":
        return "-"
    if column.kind == "metric" and _number(value):
        return f"{value:.{places}f}"
    if column.kind == "seconds" and _number(value):
        return f"{value:.2f}"
    if column.kind == "param":
        return f"{value:.4g}" if isinstance(value, float) else plain(value)
    return str(value)


def best_rows(table: Table, index: int) -> set[int]:
    """The rows holding the best value of metric column ``index`` (none for other columns)."""
    column = table.columns[index]
    values = [(row[index], i) for i, row in enumerate(table.rows) if _number(row[index])]
    if column.kind != "metric" or not column.better or len(values) < 2:
        return set()
    best = (max if column.better == "max" else min)(v for v, _ in values)
    return {i for v, i in values if v == best}


def exact(value: Any) -> str:
    """A value as CSV writes it: numbers exactly (``repr``), config values as one line, "" for a missing one."""
    if value is None:
        return ""
    if _number(value):
        return repr(value)
    return value if isinstance(value, str) else plain(value)


def to_csv(table: Table) -> str:
    """The table as CSV: the values common to every run as columns too, exact values, then the run folder."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    shared = [name for name, _ in table.shared]
    writer.writerow([table.columns[0].title, *shared, *(c.title for c in table.columns[1:]), "folder"])
    for run, row in zip(table.runs, table.rows, strict=True):
        common = [value for _, value in table.shared]
        writer.writerow([exact(row[0]), *common, *(exact(v) for v in row[1:]), run.name])
    return out.getvalue()


LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped."""
    return "".join(LATEX_SPECIAL.get(c, c) for c in text)


def to_latex(table: Table) -> str:
    """The table as a LaTeX tabular with booktabs rules (``\\usepackage{booktabs}``): the cells as the page shows
    them, the best value of each metric column in bold, the values common to every run in a comment."""
    spec = "".join("r" if c.numeric else "l" for c in table.columns)
    best = [best_rows(table, i) for i in range(len(table.columns))]
    lines = ["% recforge report: " + (", ".join(f"{n} {v}" for n, v in table.shared) or "runs compared")]
    lines += [f"\\begin{{tabular}}{{{spec}}}", "\\toprule"]
    lines.append(" & ".join(latex_escape(c.title) for c in table.columns) + " \\\\")
    lines.append("\\midrule")
    for r, row in enumerate(table.rows):
        cells = []
        for i, (column, value) in enumerate(zip(table.columns, row, strict=True)):
            text = latex_escape(shown(column, value, table.places))
            cells.append(f"\\textbf{{{text}}}" if r in best[i] else text)
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


def _header(column: Column, numeric: bool) -> str:
    group = f'<span class="group">{escape(column.group)}</span>' if column.group else ""
    text = group + escape(column.name).replace("_", "_<wbr>")
    css = ' class="label"' if column.kind == "label" else ""
    return f'<th{css} data-sort="{"number" if numeric else "text"}" title="{escape(column.title)}">{text}</th>'


def _html_cell(table: Table, column: Column, value: Any, best: bool, colour: str) -> str:
    text = escape(shown(column, value, table.places))
    if column.kind == "label":
        return (
            f'<th scope="row" class="label" data-value="{escape(str(value))}"><i class="swatch" '
            f'style="background:{colour}"></i><span class="run-label">{text}</span></th>'
        )
    if column.title == "state" and value:
        return f'<td class="state {escape(str(value).lower())}">{text}</td>'
    if column.title == "other differences":
        pairs = [pair for pair in str(value).split(", ") if pair]
        if not pairs:
            return "<td>-</td>"
        names = ", ".join(pair.split("=", 1)[0] for pair in pairs)
        summary = escape(names if len(names) <= 40 else names[:39] + "…")
        listed = "<br>".join(escape(pair) for pair in pairs)
        return f'<td class="params"><details><summary>{summary}</summary>{listed}</details></td>'
    if column.numeric or (column.kind == "param" and _number(value)):
        attribute = f' data-value="{value!r}"' if _number(value) else ""
        css = "num best" if best else "num"
        full = f' title="{escape(exact(value))}"' if column.kind == "param" else ""
        return f'<td class="{css}"{attribute}{full}>{text}</td>'
    return f'<td title="{escape(exact(value))}">{text}</td>' if column.kind == "param" else f"<td>{text}</td>"


def table_html(table: Table, colours: Mapping[str, str]) -> str:
    """The comparison as a sortable HTML table (``colours`` by run name: each label's swatch)."""
    numeric = [
        c.numeric or (c.kind == "param" and all(_number(r[i]) for r in table.rows if r[i] is not None))
        for i, c in enumerate(table.columns)
    ]
    head = "".join(_header(c, n) for c, n in zip(table.columns, numeric, strict=True))
    best = [best_rows(table, i) for i in range(len(table.columns))]
    rows = []
    for r, (run, row) in enumerate(zip(table.runs, table.rows, strict=True)):
        cells = "".join(
            _html_cell(table, column, value, r in best[i], colours[run.name])
            for i, (column, value) in enumerate(zip(table.columns, row, strict=True))
        )
        css = ' class="best-trial"' if run.trial is not None and run.trial.best else ""
        rows.append(f'<tr data-run="{escape(run.name)}" title="{escape(str(run.path))}"{css}>{cells}</tr>')
    return f'<table class="runs sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
