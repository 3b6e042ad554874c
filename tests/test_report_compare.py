"""Comparison reports as experiment trackers show them: short run labels, the keys that differ (also those only
one model has), a results table that is exported to CSV and LaTeX with the same values, a study's trial numbers and
states, and a bar chart with the spread over seeds of runs that share a configuration."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib
from html.parser import HTMLParser
from pathlib import Path

import optuna
import pytest

import recforge
from conftest import TINY_INTER, write_atomic
from recforge.report import ReportError, render_report, results_table, write_report
from recforge.report.comparison import comparison, to_csv, to_latex
from recforge.report.labels import IGNORED, differing_keys, run_labels
from recforge.report.runs import load_runs
from recforge.tuning import tune

HEADER = ["user_id:token", "item_id:token", "rating:float", "timestamp:float"]
SETTINGS = {
    "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"]},
    "eval_args": {"split": {"RS": [0.6, 0.2, 0.2]}, "order": "TO", "group_by": "user", "mode": "full"},
    "show_progress": False,
    "topk": [1, 2, 3],
    "metrics": ["Recall", "MRR", "NDCG"],
    "valid_metric": "MRR@3",
}
SVG = "{http://www.w3.org/2000/svg}"


class PruneSize4(optuna.pruners.BasePruner):
    """Prunes the trials with embedding_size 4 at their first validation (a known PRUNED trial)."""

    def prune(self, study, trial):
        return trial.params.get("embedding_size") == 4


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    write_atomic(root, "tiny", "inter", HEADER, [list(r) for r in TINY_INTER])
    return root


@pytest.fixture(scope="module")
def compared(data):
    """BPR twice with the same config but the seed, BPR with another learning rate, LightGCN, and Pop (one epoch:
    one point per curve), all in one checkpoint_dir."""

    def run(model, **values):
        config = {**SETTINGS, "data_path": str(data), "checkpoint_dir": str(data / "saved"), **values}
        return Path(recforge.run(model, "tiny", config_dict=config, verbose=False)["run_dir"])

    return {
        "bpr_1": run("BPR", epochs=3, seed=1),
        "bpr_2": run("BPR", epochs=3, seed=2),
        "bpr_lr": run("BPR", epochs=3, seed=1, learning_rate=0.05),
        "lightgcn": run("LightGCN", epochs=2, seed=1),
        "pop": run("Pop"),
    }


@pytest.fixture(scope="module")
def study(data):
    """A grid study over embedding_size 0 (refused by the config: FAIL without a run folder), 4 (PRUNED) and 8."""
    folder = data / "study"
    config = {**SETTINGS, "data_path": str(data), "epochs": 3}
    space = {"embedding_size": [0, 4, 8]}
    tune(
        "BPR", "tiny", space=space, trials=3, study_dir=folder, sampler="grid", pruner=PruneSize4(), config_dict=config
    )
    return folder


class Cells(HTMLParser):
    """The cells of the first ``<table class="runs ...">``: a list of rows, each a list of (attributes, text)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[tuple[dict, str]]] = []
        self.inside, self.cell = False, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and "runs" in (attrs.get("class") or "").split():
            self.inside = True
        elif self.inside and tag == "tr":
            self.rows.append([])
        elif self.inside and tag in ("td", "th"):
            self.cell = (attrs, [])

    def handle_endtag(self, tag):
        if tag == "table":
            self.inside = False
        elif self.inside and tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append((self.cell[0], "".join(self.cell[1]).strip()))
            self.cell = None

    def handle_data(self, text):
        if self.cell is not None:
            self.cell[1].append(text)


def runs_table(page: str) -> tuple[list[str], list[dict[str, tuple[dict, str]]]]:
    """The runs table's column titles and its rows as {title: (attributes, text)}."""
    parser = Cells()
    parser.feed(page)
    header, *rows = parser.rows
    titles = [attrs["title"] for attrs, _ in header]
    return titles, [dict(zip(titles, row, strict=True)) for row in rows]


def exported(page: str, name: str) -> str:
    (text,) = re.findall(rf'<button type="button" class="export-text" data-file="{name}"[^>]*data-text="([^"]*)"', page)
    return html.unescape(text)


def svgs(page: str) -> list[ET.Element]:
    return [ET.fromstring(svg) for svg in re.findall(r'<svg class="chart".*?</svg>', page, flags=re.S)]


def metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def test_differing_keys_include_the_keys_only_one_model_has(compared):
    runs = load_runs([compared["bpr_1"], compared["lightgcn"]])
    keys = differing_keys(runs)
    assert {"n_layers", "reg_weight"} <= set(keys) and "learning_rate" not in keys and "seed" not in keys
    # Exactly the rows the config table marks as varying, but for the bookkeeping keys.
    page = render_report([compared["bpr_1"], compared["lightgcn"]])
    varies = set(re.findall(r'<tr data-key="([^"]+)" class="[^"]*varies[^"]*"', page))
    assert set(keys) == varies - IGNORED
    titles, rows = runs_table(page)
    assert {"config n_layers", "config reg_weight"} <= set(titles)
    lightgcn = yaml_config(compared["lightgcn"])
    assert rows[0]["config n_layers"][1] == "-" and rows[1]["config n_layers"][1] == str(lightgcn["n_layers"])
    assert float(rows[1]["config reg_weight"][0]["data-value"]) == lightgcn["reg_weight"]


def yaml_config(run_dir: Path) -> dict:
    import yaml

    return yaml.safe_load((run_dir / "config.yaml").read_text())


def test_runs_are_named_by_model_and_the_values_that_set_them_apart(compared):
    paths = [compared[k] for k in ("bpr_1", "bpr_2", "bpr_lr", "lightgcn", "pop")]
    labels = run_labels(load_runs(paths))
    # Among the BPR runs the learning rate and the seed differ (the seed named last); one run of a model: its name.
    assert list(labels.values()) == [
        "BPR lr=0.001 seed=1",
        "BPR lr=0.001 seed=2",
        "BPR lr=0.05 seed=1",
        "LightGCN",
        "Pop",
    ]
    page = render_report(paths)
    assert "-20" not in "".join(re.findall(r'<span class="run-label">([^<]*)<', page))  # no time-stamped folders
    _, rows = runs_table(page)
    assert [row["run"][1] for row in rows] == list(labels.values())
    assert "All runs: dataset <b>tiny</b> · valid metric <b>MRR@3</b>" in page  # common values: no columns
    line_charts = [c for c in svgs(page) if any(g.get("class") == "series" for g in c.iter(f"{SVG}g"))]
    assert len(line_charts) >= 5
    for chart in line_charts:  # every chart's legend names the runs it draws by their labels
        drawn = [g.get("data-label") for g in chart.iter(f"{SVG}g") if g.get("class") == "series"]
        legend = [t.find(f"{SVG}title").text for t in chart.iter(f"{SVG}text") if t.find(f"{SVG}title") is not None]
        assert legend[: len(drawn)] == drawn and set(drawn) <= set(labels.values())


def test_csv_and_latex_hold_the_values_of_the_table(compared):
    paths = [compared[k] for k in ("bpr_1", "bpr_lr", "lightgcn", "pop")]
    page = render_report(paths)
    titles, rows = runs_table(page)
    runs = load_runs(paths)
    table = comparison(runs, run_labels(runs))
    assert exported(page, "runs.csv") == to_csv(table) == results_table(paths, "csv")
    assert exported(page, "runs.tex") == to_latex(table) == results_table(paths, "latex")
    with pytest.raises(ReportError, match="kind must be 'csv' or 'latex', not 'xlsx'"):
        results_table(paths, "xlsx")
    header, *lines = list(csv.reader(io.StringIO(exported(page, "runs.csv"))))
    assert header == [titles[0], "dataset", "valid metric", *titles[1:], "folder"]
    for line, row, path in zip(lines, rows, paths, strict=True):
        values = dict(zip(header, line, strict=True))
        assert values["folder"] == path.name and values["dataset"] == "tiny"
        for title, (attrs, text) in row.items():
            if "data-value" in attrs and title != "run":
                assert float(values[title]) == float(attrs["data-value"]), title  # exact
            elif text == "-":
                assert values[title] == "", title
            elif title != "other differences":
                assert values[title] == text, title
    test = metrics(paths[0])["test_result"]
    assert [float(lines[0][header.index(f"test {m}")]) for m in test] == list(test.values())
    latex = exported(page, "runs.tex").splitlines()
    assert (
        latex[1].startswith("\\begin{tabular}{l")
        and latex[2] == "\\toprule"
        and latex[-2:]
        == [
            "\\bottomrule",
            "\\end{tabular}",
        ]
    )
    assert latex[3] == " & ".join(t.replace("_", "\\_") for t in titles) + " \\\\" and latex[4] == "\\midrule"
    for line, row in zip(latex[5:-2], rows, strict=True):
        cells = line.removesuffix(" \\\\").split(" & ")
        for cell, (title, (attrs, text)) in zip(cells, row.items(), strict=True):
            bold = cell.startswith("\\textbf{")
            assert bold == ("best" in (attrs.get("class") or "").split())
            if title != "other differences":  # the page folds that one
                assert unlatex(cell.removeprefix("\\textbf{").removesuffix("}" if bold else "")) == text
    # The best of each metric column is the highest (MRR, NDCG, recall: bigger is better).
    column = f"test {next(iter(test))}"
    best = max(float(row[column][0]["data-value"]) for row in rows)
    assert [row[column][0].get("class") == "num best" for row in rows] == [
        float(row[column][0]["data-value"]) == best for row in rows
    ]


def unlatex(text: str) -> str:
    for plain, escaped in (("~", r"\textasciitilde{}"), ("^", r"\textasciicircum{}"), ("\\", r"\textbackslash{}")):
        text = text.replace(escaped, plain)
    return re.sub(r"\\([&%$#_{}])", r"\1", text)


def test_a_study_report_shows_trial_numbers_and_states(study):
    trials = {int(row["number"]): row for row in csv.DictReader((study / "trials.csv").open())}
    assert sorted(row["state"] for row in trials.values()) == ["COMPLETE", "FAIL", "PRUNED"]
    page = render_report(study)
    titles, rows = runs_table(page)
    assert titles[:3] == ["run", "trial", "state"] and "config embedding_size" in titles
    shown = {int(row["trial"][1]): row for row in rows}
    with_folder = {n for n, row in trials.items() if row["run_dir"]}
    assert set(shown) == with_folder
    for number, row in shown.items():
        state = trials[number]["state"]
        size = trials[number]["embedding_size"]
        assert row["state"] == ({"class": f"state {state.lower()}"}, state)
        assert row["run"][1] == f"BPR #{number} emb={size}" + ("" if state == "COMPLETE" else f" {state}")
    best = json.loads((study / "results.json").read_text())["best_trial"]["number"]
    assert re.findall(r'<tr data-run="[^"]+" title="[^"]+" class="best-trial">.*?</tr>', page)[0].count(f"BPR #{best} ")
    (failed,) = [n for n, row in trials.items() if not row["run_dir"]]
    assert f'<li class="notes orphan" data-trial="{failed}">trial {failed} of study: FAIL, no run folder: ' in page
    assert "ConfigError: config key &#x27;embedding_size&#x27;: 0 is not an integer &gt;= 1" in page
    assert '<p class="meta study-counts">Trials: 3 (' in page
    # A study's trials evaluate no test data: the bars chart the best validation results.
    (bars,) = [c for c in svgs(page) if c.find(f"{SVG}text").text == "best validation results"]
    values = {
        g.get("data-label"): float(g.get("data-mean")) for g in bars.iter(f"{SVG}g") if g.get("data-metric") == "mrr@3"
    }
    for number, row in shown.items():
        assert values[row["run"][1]] == pytest.approx(float(trials[number]["valid_score"]))
    # A trial's own report names it.
    single = render_report(Path(trials[best]["run_dir"]))
    assert f"<dt>trial</dt><dd>#{best} of study: COMPLETE (the study's best)</dd>" in single


def test_runs_that_share_a_configuration_are_one_bar_with_their_spread(compared):
    paths = [compared[k] for k in ("bpr_1", "bpr_2", "bpr_lr")]
    page = render_report(paths)
    (chart,) = [c for c in svgs(page) if c.find(f"{SVG}text").text == "test results"]
    bars = [g for g in chart.iter(f"{SVG}g") if g.get("class") == "bar"]
    tests = [metrics(p)["test_result"] for p in paths]
    assert [b.get("data-metric") for b in bars[:2]] == [next(iter(tests[0]))] * 2  # one slot per metric
    scale = {k: float(chart.get(f"data-{k}")) for k in ("y0", "y1", "top", "bottom")}
    for bar in bars:
        metric, label = bar.get("data-metric"), bar.get("data-label")
        found = [tests[0][metric], tests[1][metric]] if label == "BPR lr=0.001 (2 runs)" else [tests[2][metric]]
        assert label in ("BPR lr=0.001 (2 runs)", "BPR lr=0.05") and int(bar.get("data-n")) == len(found)
        assert float(bar.get("data-mean")) == pytest.approx(sum(found) / len(found))
        assert (float(bar.get("data-min")), float(bar.get("data-max"))) == (min(found), max(found))
        rect = bar.find(f"{SVG}rect")
        top = scale["y0"] + (scale["bottom"] - float(rect.get("y"))) / (scale["bottom"] - scale["top"]) * (
            scale["y1"] - scale["y0"]
        )
        assert top == pytest.approx(sum(found) / len(found), abs=(scale["y1"] - scale["y0"]) * 1e-3)
        whiskers, dots = bar.findall(f"{SVG}path"), bar.findall(f"{SVG}circle")
        assert (len(whiskers), len(dots)) == ((1, 2) if len(found) > 1 else (0, 0))
    legend = [t.find(f"{SVG}title").text for t in chart.iter(f"{SVG}text") if t.find(f"{SVG}title") is not None]
    spread = "mean of a configuration's runs; whisker: min–max, dots: the runs"
    assert legend == ["BPR lr=0.001 (2 runs)", "BPR lr=0.05", spread]


# -- a real browser ------------------------------------------------------------------------------------------------
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WIDTHS = (1400, 1920)
COLOURED = 150  # coloured pixels that a drawn plot has at least (a line across it has thousands)


def browser() -> str | None:
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


needs_browser = pytest.mark.skipif(browser() is None, reason="no chromium, chromium-browser or google-chrome installed")


def headless(profile: Path, *args: str) -> subprocess.CompletedProcess:
    command = [browser(), "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars"]
    command += [f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--force-device-scale-factor=1"]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=120, check=False)


def checked_dom(page: Path, width: int, profile: Path) -> str:
    """The page's DOM after its script and its self-test ran in a window ``width`` pixels wide; fails on script
    or console errors."""
    done = headless(
        profile, f"--window-size={width},1000", "--virtual-time-budget=15000", "--dump-dom", page.as_uri() + "#selftest"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line]
    assert not [line for line in console if "error" in line.lower() or "uncaught" in line.lower()], console
    root = re.search(r"<html[^>]*>", done.stdout).group(0)
    assert 'data-report-ready="1"' in root and 'data-js-errors="[]"' in root and 'data-selftest="done"' in root, root
    return done.stdout


def boxes(dom: str) -> list[dict[str, str]]:
    """The attributes of each chart's box (what the self-test wrote)."""
    return [
        dict(re.findall(r'([a-z-]+)="([^"]*)"', tag)) for tag in re.findall(r'<figure class="chart-box"[^>]*>', dom)
    ]


def pixels(path: Path) -> tuple[int, int, list[bytes], int]:
    """Width, height, the rows (RGB or RGBA bytes) and bytes per pixel of a PNG screenshot."""
    try:
        from PIL import Image
    except ImportError:
        width, height, size, rows = png_pixels(path)
        return width, height, rows, size
    image = Image.open(path).convert("RGB")
    data = image.tobytes()
    return (
        image.width,
        image.height,
        [data[y * image.width * 3 : (y + 1) * image.width * 3] for y in range(image.height)],
        3,
    )


def coloured(rows: list[bytes], size: int, box: str) -> int:
    """Pixels of a hue (not white, grey or black: the frame, grid and text) inside ``box`` ("x,y,width,height")."""
    x, y, width, height = (int(v) for v in box.split(","))
    count = 0
    for row in rows[y + 2 : y + height - 2]:
        for i in range((x + 2) * size, (x + width - 2) * size, size):
            r, g, b = row[i], row[i + 1], row[i + 2]
            count += max(r, g, b) - min(r, g, b) > 40
    return count


def png_pixels(path: Path) -> tuple[int, int, int, list[bytes]]:
    """Width, height, bytes per pixel and the rows of an 8-bit RGB or RGBA PNG (Chromium's screenshots),
    unfiltered."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = {}, 8
    while at < len(data):
        (length,), kind = struct.unpack(">I", data[at : at + 4]), data[at + 4 : at + 8]
        chunks[kind] = chunks.get(kind, b"") + data[at + 8 : at + 8 + length]
        at += 12 + length
    width, height, depth, colour_type = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert depth == 8 and colour_type in (2, 6)
    size = 3 if colour_type == 2 else 4
    raw, stride, rows, previous = zlib.decompress(chunks[b"IDAT"]), width * size, [], bytearray(width * size)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left, up = line[i - size] if i >= size else 0, previous[i]
            corner = previous[i - size] if i >= size else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        rows.append(bytes(line))
        previous = line
    return width, height, size, rows


@pytest.fixture(scope="module")
def pages(compared, study, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pages")
    return {
        "compare": write_report(
            [compared[k] for k in ("bpr_1", "bpr_2", "bpr_lr", "lightgcn", "pop")], folder / "c.html"
        ),
        "study": write_report(study, folder / "study.html"),
        "single": write_report(compared["lightgcn"], folder / "single.html"),
    }


@needs_browser
@pytest.mark.parametrize(("name", "width"), [("compare", 1400), ("compare", 1920), ("study", 1400), ("single", 1920)])
def test_a_real_browser_shows_every_chart_whole_without_overflow_or_errors(pages, name, width, tmp_path):
    dom = checked_dom(pages[name], width, tmp_path / "profile")
    root = re.search(r"<html[^>]*>", dom).group(0)
    assert 'data-overflow-x="0"' in root, root  # the page is never wider than the window
    found = boxes(dom)
    assert len(found) == pages[name].read_text().count('<figure class="chart-box"') >= 4
    for box in found:
        name_ = box["data-name"]
        assert box["data-text-outside"] == "0", name_  # no text (title, ticks, legend) leaves the chart
        assert box["data-legend-overlaps"] == "0" and box["data-mark-over-plot"] == "0", name_
        assert box["data-svg-export"] == "ok", name_  # the saved SVG parses and carries its style
        assert int(box["data-png-coloured"]) > COLOURED, name_  # the saved PNG shows the lines or bars
        assert int(box["data-plot-box"].split(",")[2]) >= 480, name_  # the charts use the page: 2 per row
    for chart in re.findall(r'<svg class="chart".*?</svg>', dom, flags=re.S):
        labels = re.findall(r'<text class="axis-label [xy]"[^>]*>([^<]+)</text>', chart)
        assert len(labels) == 2 and all(label.strip() for label in labels)
        assert chart.count('class="legend-item"') >= 1
    if name != "single":
        assert re.findall(r'data-roundtrip="([^"]*)"', dom) == ["ok", "ok"]  # CSV and LaTeX files hold the table


@needs_browser
@pytest.mark.parametrize("width", WIDTHS)
def test_a_screenshot_shows_every_chart_drawn_and_an_emptied_one_is_caught(pages, width, tmp_path):
    dom = checked_dom(pages["compare"], width, tmp_path / "profile")
    height = int(re.search(r'data-page-height="(\d+)"', dom).group(1))
    found = boxes(dom)

    def counts(page: Path) -> list[int]:
        shot = tmp_path / f"{page.stem}.png"
        done = headless(tmp_path / "profile", f"--window-size={width},{height}", f"--screenshot={shot}", page.as_uri())
        assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
        shot_width, shot_height, rows, size = pixels(shot)
        assert (shot_width, shot_height) == (width, height)
        return [coloured(rows, size, box["data-plot-box"]) for box in found]

    drawn = counts(pages["compare"])
    assert all(count > COLOURED for count in drawn), drawn
    # The same page with its lines, marks and bars taken out: every plot is found empty.
    text = pages["compare"].read_text()
    for pattern in (r'<g class="series".*?</g>', r'<g class="marker".*?</g>', r'<g class="bar".*?</g>'):
        text = re.sub(pattern, "", text, flags=re.S)
    emptied = tmp_path / "emptied.html"
    emptied.write_text(text)
    assert all(count < COLOURED for count in counts(emptied)), counts(emptied)
