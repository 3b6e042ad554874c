"""Run reports: the curves are the history's values, the best epoch and the changed config keys are marked, the
tables are metrics.json, several runs are compared; bad folders are clear errors; `recforge run` writes one; a real
browser renders the page without errors."""

import itertools
import json
import logging
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import recforge
import recforge.report
from conftest import TINY_INTER, tiny_args, write_atomic
from recforge.cli import main
from recforge.report import ReportError, render_report, write_report
from recforge.report.series import run_series

HEADER = ["user_id:token", "item_id:token", "rating:float", "timestamp:float"]
SETTINGS = {
    "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"]},
    "eval_args": {"split": {"RS": [0.6, 0.2, 0.2]}, "order": "TO", "group_by": "user", "mode": "full"},
    "show_progress": False,
    "topk": [1, 2, 3],
    "metrics": ["Recall", "MRR", "NDCG"],
    "valid_metric": "Recall@3",
}


def write_knowledge(root: Path) -> None:
    """tiny.link / tiny.kg: every item linked to an entity with a genre and a neighbour."""
    items = sorted({item for _, item, _, _ in TINY_INTER})
    write_atomic(root, "tiny", "link", ["item_id:token", "entity_id:token"], [[i, f"e_{i}"] for i in items])
    triples = [[f"e_{i}", "genre", f"g{n % 2}"] for n, i in enumerate(items)]
    triples += [[f"e_{a}", "near", f"e_{b}"] for a, b in itertools.pairwise(items)]
    write_atomic(root, "tiny", "kg", ["head_id:token", "relation_id:token", "tail_id:token"], triples)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Finished runs on the tiny data: two BPR runs that differ in learning_rate, BPR without validation, Pop,
    and MKR (two objectives, losses with parts, a knowledge-graph objective not due every epoch)."""
    root = tmp_path_factory.mktemp("report")
    write_atomic(root, "tiny", "inter", HEADER, [list(r) for r in TINY_INTER])
    write_knowledge(root)

    def run(model, folder, **values):
        config = {**SETTINGS, "data_path": str(root), "checkpoint_dir": str(root / folder), **values}
        return Path(recforge.run(model, "tiny", config_dict=config, verbose=False)["run_dir"])

    found = {
        "bpr": run("BPR", "compare", epochs=4, learning_rate=0.05, train_batch_size=6, weight_decay=0.0),
        "bpr_slow": run("BPR", "compare", epochs=3, learning_rate=0.002, train_batch_size=6),
        "no_valid": run("BPR", "other", epochs=3, eval_step=0),
        "pop": run("Pop", "other"),
    }
    kg_cols = {"kg": ["head_id", "relation_id", "tail_id"], "link": ["item_id", "entity_id"]}
    load_col = {**SETTINGS["load_col"], **kg_cols}
    found["mkr"] = run("MKR", "other", epochs=4, kge_interval=2, load_col=load_col, train_batch_size=8)
    return found


def history(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]


def metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def charts(html: str) -> list[ET.Element]:
    return [ET.fromstring(svg) for svg in re.findall(r'<svg class="chart".*?</svg>', html, flags=re.S)]


def series_points(chart: ET.Element, key: str, run: str | None = None) -> list[tuple[float, float]]:
    """The (epoch, value) points of a series, read back from the polyline's pixels through the chart's scales."""
    (group,) = [
        g
        for g in chart.iter("{http://www.w3.org/2000/svg}g")
        if g.get("class") == "series" and g.get("data-key") == key and (run is None or g.get("data-run") == run)
    ]
    polyline = group.find("{http://www.w3.org/2000/svg}polyline")
    pixels = [tuple(map(float, pair.split(","))) for pair in polyline.get("points").split()]
    assert int(group.get("data-points")) == len(pixels)
    return [unscale(chart, px, py) for px, py in pixels]


def unscale(chart: ET.Element, px: float, py: float) -> tuple[float, float]:
    a = {k: float(chart.get(f"data-{k}")) for k in ("x0", "x1", "y0", "y1", "left", "right", "top", "bottom")}
    x = a["x0"] + (px - a["left"]) / (a["right"] - a["left"]) * (a["x1"] - a["x0"])
    y = a["y0"] + (a["bottom"] - py) / (a["bottom"] - a["top"]) * (a["y1"] - a["y0"])
    return x, y


def keys(html: str) -> set[str]:
    return set(re.findall(r'<g class="series" data-run="[^"]*" data-key="([^"]+)"', html))


def chart_of(html: str, key: str) -> ET.Element:
    (found,) = [
        c for c in charts(html) if any(g.get("data-key") == key for g in c.iter() if g.get("class") == "series")
    ]
    return found


def assert_points(drawn, expected, chart):
    tolerance = (float(chart.get("data-y1")) - float(chart.get("data-y0"))) * 1e-4
    assert len(drawn) == len(expected)
    for (x, y), (epoch, value) in zip(drawn, expected, strict=True):
        assert x == pytest.approx(epoch, abs=0.02) and y == pytest.approx(value, abs=tolerance)


def test_curves_are_the_history_values(runs):
    run_dir = runs["bpr"]
    html = (run_dir / "report.html").read_text()  # written by recforge.run
    records = history(run_dir)
    assert len(records) == 4
    loss = series_points(chart_of(html, "loss:total"), "loss:total")
    assert_points(loss, [(r["epoch"], r["loss"]) for r in records], chart_of(html, "loss:total"))
    # The lowest and highest losses are at the bottom and top of the drawn range (inside its margin).
    chart = chart_of(html, "loss:total")
    assert float(chart.get("data-y0")) < min(r["loss"] for r in records) < max(r["loss"] for r in records)
    assert max(r["loss"] for r in records) < float(chart.get("data-y1"))
    for metric in records[0]["valid_result"]:
        chart = chart_of(html, f"valid:{metric}")
        drawn = series_points(chart, f"valid:{metric}")
        assert_points(drawn, [(r["epoch"], r["valid_result"][metric]) for r in records], chart)
    chart = chart_of(html, "lr:main")
    assert_points(series_points(chart, "lr:main"), [(r["epoch"], r["lr"]["main"]) for r in records], chart)
    chart = chart_of(html, "seconds:train")
    assert_points(series_points(chart, "seconds:train"), [(r["epoch"], r["train_seconds"]) for r in records], chart)
    assert_points(series_points(chart, "seconds:valid"), [(r["epoch"], r["valid_seconds"]) for r in records], chart)


def best_markers(chart: ET.Element) -> list[tuple[int, float]]:
    """(data-epoch, epoch read back from the line's x) of every marker."""
    found = []
    for group in chart.iter("{http://www.w3.org/2000/svg}g"):
        if group.get("class") == "marker":
            line = group.find("{http://www.w3.org/2000/svg}line")
            found.append((int(group.get("data-epoch")), unscale(chart, float(line.get("x1")), 0)[0]))
    return found


def test_the_best_epoch_is_marked_where_metrics_json_says(runs, tmp_path):
    best = metrics(runs["bpr"])["best_epoch"]
    html = render_report(runs["bpr"])
    for chart in charts(html):
        ((epoch, x),) = best_markers(chart)
        assert epoch == best and x == pytest.approx(best, abs=0.02)
    # Another best epoch in metrics.json moves the marker there, with a ring on the curve at that epoch.
    copy = tmp_path / "copy"
    shutil.copytree(runs["bpr"], copy)
    changed = {**metrics(copy), "best_epoch": 1}
    (copy / "metrics.json").write_text(json.dumps(changed))
    html = render_report(copy)
    chart = chart_of(html, "valid:recall@3")
    assert [epoch for epoch, _ in best_markers(chart)] == [1]
    rings = [c for c in chart.iter("{http://www.w3.org/2000/svg}circle") if c.get("class") == "best"]
    assert len(rings) == 3  # recall@1, @2, @3 are in the same chart
    expected = history(copy)[1]["valid_result"]["recall@3"]
    ring = next(c for c in rings if "recall@3" in c.find("{http://www.w3.org/2000/svg}title").text)
    x, y = unscale(chart, float(ring.get("cx")), float(ring.get("cy")))
    assert x == pytest.approx(1, abs=0.02) and y == pytest.approx(expected, abs=1e-4)


def config_rows(html: str) -> dict[str, str]:
    """The config table's rows by key: the row's class attribute ("" for none)."""
    return {key: css or "" for key, css in re.findall(r'<tr data-key="([^"]+)"(?: class="([^"]*)")?>', html)}


def test_keys_that_differ_from_the_defaults_are_highlighted(runs):
    rows = config_rows((runs["bpr"] / "report.html").read_text())
    for key in ("learning_rate", "epochs", "train_batch_size", "topk", "valid_metric", "checkpoint_dir"):
        assert "changed" in rows[key].split(), key
    # Package defaults, the model's own defaults, a key set to its default value, and the device are not.
    for key in ("seed", "learner", "embedding_size", "weight_decay", "device", "precision", "eval_step"):
        assert "changed" not in rows[key].split(), key
    html = (runs["bpr"] / "report.html").read_text()
    row = re.search(r'<tr data-key="learning_rate"[^>]*>(.*?)</tr>', html).group(1)
    assert '<td class="changed">0.05</td>' in row and '<td class="default">0.001</td>' in row


def test_the_tables_are_metrics_json_and_the_history(runs):
    run_dir = runs["bpr"]
    html = render_report(run_dir)
    saved = metrics(run_dir)
    table = re.search(r'<table class="results">.*?</table>', html, flags=re.S).group(0)
    rows = dict(re.findall(r'<tr data-metric="([^"]+)">(.*?)</tr>', table))
    assert set(rows) == set(saved["test_result"]) == set(saved["best_valid_result"])
    for metric, row in rows.items():
        valid, test = (float(v) for v in re.findall(r'data-value="([^"]+)"', row))
        assert valid == saved["best_valid_result"][metric] and test == saved["test_result"][metric]
        assert f">{saved['test_result'][metric]:.4f}<" in row
    assert f"valid (best, epoch {saved['best_epoch']})" in table
    timings = re.search(r'<table class="timings">.*?</table>', html, flags=re.S).group(0)
    epochs, train, per_epoch, valid, validations, total = (
        float(v) for v in re.findall(r'data-value="([^"]+)"', timings)
    )
    records = history(run_dir)
    assert (epochs, validations) == (4, 4)
    assert train == pytest.approx(sum(r["train_seconds"] for r in records), rel=1e-12)
    assert valid == pytest.approx(sum(r["valid_seconds"] for r in records), rel=1e-12)
    assert per_epoch == pytest.approx(train / 4) and total == pytest.approx(train + valid)


def test_two_runs_are_compared_side_by_side(runs, tmp_path):
    a, b = runs["bpr"], runs["bpr_slow"]
    out = write_report([a, b], tmp_path / "compare.html")
    html = out.read_text()
    assert re.findall(r'<tr data-run="([^"]+)"', render_report(a.parent)) == [a.name, b.name]  # the folder of both
    table = re.search(r'<table class="runs sortable">.*?</table>', html, flags=re.S).group(0)
    rows = re.findall(r'<tr data-run="([^"]+)"[^>]*>(.*?)</tr>', table)
    assert [name for name, _ in rows] == [a.name, b.name]
    # Named by model and the values that differ (epochs, learning rate); a column per differing key.
    labels = [re.search(r'<span class="run-label">([^<]+)</span>', row).group(1) for _, row in rows]
    assert labels == ["BPR epochs=4 lr=0.05", "BPR epochs=3 lr=0.002"]
    header = re.findall(r'<th[^>]* title="([^"]+)"', table)
    assert {"config epochs", "config learning_rate"} <= set(header) and "config seed" not in header
    for (_, row), run_dir in zip(rows, (a, b), strict=True):
        values = [float(v) for v in re.findall(r'data-value="([0-9.e+-]+)"', row)]
        assert metrics(run_dir)["best_valid_score"] in values
        assert all(v in values for v in metrics(run_dir)["test_result"].values())
    assert 'data-value="0.05"' in rows[0][1] and 'data-value="0.002"' in rows[1][1]
    assert table.count('data-sort="number"') > 3
    # Every curve: one line per run, in the run's colour, named by its label; each run's best epoch marked.
    for chart in charts(html):
        if any(g.get("class") == "bar" for g in chart.iter()):
            continue  # the bar chart of the final results
        lines = [g for g in chart.iter() if g.get("class") == "series"]
        assert [g.get("data-run") for g in lines] == [a.name, b.name]
        assert [g.get("data-label") for g in lines] == labels
        assert lines[0].get("stroke") != lines[1].get("stroke")
        assert [epoch for epoch, _ in best_markers(chart)] == [metrics(a)["best_epoch"], metrics(b)["best_epoch"]]
    chart = chart_of(html, "loss:total")
    assert_points(series_points(chart, "loss:total", b.name), [(r["epoch"], r["loss"]) for r in history(b)], chart)
    assert html.count('class="run-toggle"') == 2
    config = re.search(r'<table class="config[^"]*">.*?</table>', html, flags=re.S).group(0)
    assert "varies" in config_rows(config)["learning_rate"] and "varies" not in config_rows(config)["seed"]


def test_runs_without_validation_pop_and_several_objectives_render(runs):
    html = render_report(runs["no_valid"])
    assert keys(html) == {"loss:total", "lr:main", "seconds:train"}
    for chart in charts(html):  # the "best" epoch without validation is the last one
        assert [epoch for epoch, _ in best_markers(chart)] == [2]
    assert "(no validation: the last)" in html
    assert "valid (best" not in html and re.search(r"<th>test</th>.*<tr data-metric=\"recall@3\">", html, re.S)

    html = render_report(runs["pop"])
    chart = chart_of(html, "loss:total")
    assert series_points(chart, "loss:total") == [pytest.approx((0, 0.0), abs=0.02)]
    assert "lr:main" not in keys(html) and "valid:recall@3" in keys(html)  # Pop has no optimizer

    records = history(runs["mkr"])
    html = render_report(runs["mkr"])
    assert {r["losses"]["kg"] is None for r in records} == {True, False}  # kg every kge_interval epochs
    for objective in ("rec", "kg"):
        due = [r for r in records if r["losses"][objective] is not None]
        chart = chart_of(html, f"loss:{objective}")
        assert_points(
            series_points(chart, f"loss:{objective}"), [(r["epoch"], sum(r["losses"][objective])) for r in due], chart
        )
        parts = chart_of(html, f"loss:{objective}[1]")
        for i in range(len(due[0]["losses"][objective])):
            key = f"loss:{objective}[{i + 1}]"
            assert_points(series_points(parts, key), [(r["epoch"], r["losses"][objective][i]) for r in due], parts)


def test_series_skip_missing_and_non_finite_values():
    records = [
        {"epoch": 0, "loss": 1.0, "losses": {"a": 0.5, "b": [0.25, 0.25]}},
        {"epoch": 1, "loss": float("nan"), "losses": {"a": float("nan"), "b": None}},
        {"epoch": 2, "loss": 0.5, "losses": {"a": 0.2, "b": None}, "valid_result": {"auc": 0.7}},
    ]
    series = run_series(records)
    assert list(series) == ["loss:total", "loss:a", "loss:b", "loss:b[1]", "loss:b[2]", "valid:auc"]
    assert series["loss:total"].points == ((0, 1.0), (2, 0.5)) and series["loss:total"].dropped == 1
    assert series["loss:b"].points == ((0, 0.5),) and series["valid:auc"].points == ((2, 0.7),)


def test_a_torn_last_history_line_is_skipped_with_a_warning(runs, tmp_path, caplog):
    copy = tmp_path / "killed"
    shutil.copytree(runs["bpr"], copy)
    with open(copy / "history.jsonl", "a") as handle:
        handle.write('{"epoch": 4, "loss": 0.6')
    with caplog.at_level(logging.WARNING, logger="recforge"):
        html = render_report(copy)
    assert any("torn by a kill" in r.getMessage() and "history.jsonl" in r.getMessage() for r in caplog.records)
    assert len(series_points(chart_of(html, "loss:total"), "loss:total")) == 4
    # Killed before metrics.json: the curves are there, the final results say why they are not.
    (copy / "metrics.json").unlink()
    html = render_report(copy)
    assert "No final results: the run did not finish" in html
    assert len(series_points(chart_of(html, "loss:total"), "loss:total")) == 4


def test_bad_folders_are_clear_errors(runs, tmp_path):
    with pytest.raises(ReportError, match=r"nowhere: no such folder"):
        render_report(tmp_path / "nowhere")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(ReportError, match=r"empty is not a run folder: it has no history.jsonl and no metrics.json"):
        render_report(tmp_path / "empty")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ReportError, match=r"file.txt is a file"):
        render_report(tmp_path / "file.txt")
    with pytest.raises(ReportError, match=r"2 folders given: name the report file \(-o FILE"):
        write_report([runs["bpr"], runs["pop"]])
    broken = tmp_path / "broken"
    shutil.copytree(runs["pop"], broken)
    (broken / "metrics.json").write_text("{not json")
    with pytest.raises(ReportError, match=r"broken/metrics.json cannot be read"):
        render_report(broken)


def test_the_report_command(runs, tmp_path, capsys):
    copy = tmp_path / "one"
    shutil.copytree(runs["pop"], copy)
    (copy / "report.html").unlink()
    assert main(["report", str(copy)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {copy / 'report.html'}"
    assert "Pop on tiny" in (copy / "report.html").read_text()

    assert main(["report", str(runs["bpr"]), str(runs["pop"]), "-o", str(tmp_path / "two.html")]) == 0
    assert len(re.findall(r'<tr data-run="', (tmp_path / "two.html").read_text())) == 2

    assert main(["report", str(runs["bpr"]), str(runs["pop"])]) == 2
    assert "recforge: error: 2 folders given: name the report file (-o FILE" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"recforge: error: {tmp_path / 'empty'} is not a run folder") and "Traceback" not in err


def test_recforge_run_writes_the_report_and_survives_a_failing_one(tiny_path, monkeypatch, caplog):
    assert main([*tiny_args(tiny_path, "BPR"), "--epochs", "2"]) == 0
    (run_dir,) = (tiny_path / "saved").iterdir()
    html = (run_dir / "report.html").read_text()
    assert len(series_points(chart_of(html, "loss:total"), "loss:total")) == 2
    assert 'data-key="epochs" class="changed"' in html

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(recforge.report, "write_report", fail)
    with caplog.at_level(logging.WARNING, logger="recforge"):
        config = {**SETTINGS, "data_path": str(tiny_path), "checkpoint_dir": str(tiny_path / "pop")}
        result = recforge.run("Pop", "tiny", config_dict=config, verbose=False)
    assert result["test_result"] and not (Path(result["run_dir"]) / "report.html").exists()
    assert any("report.html was not written: OSError: disk full" in r.getMessage() for r in caplog.records)
