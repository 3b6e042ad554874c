"""Run reports: one self-contained HTML file with a run's learning curves, best epoch, final results, timings
and config against the defaults, or the side-by-side comparison of several runs.

    recforge report RUN_DIR [RUN_DIR ...] [-o FILE]

``render_report`` returns the page, ``write_report`` writes it, ``results_table`` gives the comparison's table as
CSV or LaTeX (what the page's buttons save). A folder that is not a run folder but holds run
folders below it (a ``checkpoint_dir``, a tuning study) stands for all of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from recforge.report.comparison import comparison, to_csv, to_latex
from recforge.report.labels import run_labels
from recforge.report.page import page
from recforge.report.runs import ReportError, Run, find_run_folders, load_runs
from recforge.utils.files import atomic_write

REPORT_NAME = "report.html"


def _as_list(run_dirs: str | Path | Iterable[str | Path]) -> list[str | Path]:
    return [run_dirs] if isinstance(run_dirs, (str, Path)) else list(run_dirs)


def render_report(run_dirs: str | Path | Iterable[str | Path]) -> str:
    """The HTML report of the runs that ``run_dirs`` stand for: one run's report, or the comparison of
    several. Raises ``ReportError`` (a ``RecforgeError``) for a folder that is not a run folder and holds none."""
    paths = _as_list(run_dirs)
    if not paths:
        raise ReportError("no run folder given")
    return page(load_runs(paths))


def results_table(run_dirs: str | Path | Iterable[str | Path], kind: str = "csv") -> str:
    """The results table of the runs that ``run_dirs`` stand for, as the comparison page saves it: ``kind`` "csv"
    (exact values, the values common to every run, the run folder) or "latex" (a booktabs tabular, the values as
    shown, the best of each metric in bold). Raises ``ReportError`` for another kind or a folder without runs."""
    if kind not in ("csv", "latex"):
        raise ReportError(f"results_table: kind must be 'csv' or 'latex', not {kind!r}")
    paths = _as_list(run_dirs)
    if not paths:
        raise ReportError("no run folder given")
    runs = load_runs(paths)
    table = comparison(runs, run_labels(runs))
    return to_csv(table) if kind == "csv" else to_latex(table)


def default_output(run_dirs: str | Path | Iterable[str | Path]) -> Path:
    """Where the report goes without ``output``: ``<RUN_DIR>/report.html`` for one folder (a run folder or a
    folder of them); with several folders there is no default (``ReportError``)."""
    paths = _as_list(run_dirs)
    if len(paths) != 1:
        raise ReportError(
            f"{len(paths)} folders given: name the report file (-o FILE, or output=...); without it the report "
            f"of one folder goes to <folder>/{REPORT_NAME}"
        )
    return Path(paths[0]).expanduser() / REPORT_NAME


def write_report(run_dirs: str | Path | Iterable[str | Path], output: str | Path | None = None) -> Path:
    """Write the report of ``run_dirs`` (see ``render_report``) to ``output`` (default: ``default_output``),
    atomically; returns its path."""
    target = Path(output).expanduser() if output is not None else default_output(run_dirs)
    html = render_report(run_dirs)
    with atomic_write(target, "w") as handle:
        handle.write(html)
    return target


__all__ = [
    "REPORT_NAME",
    "ReportError",
    "Run",
    "default_output",
    "find_run_folders",
    "render_report",
    "results_table",
    "write_report",
]
