"""Every chart of a report is legible on its own: a title, both axes labelled, its own legend, one number format per
axis, one-point runs drawn as visible dots, the best epoch marked only for the runs drawn and its text kept off the
data, bars with the spread of the runs that share a configuration. Built from runs written out by hand."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from recforge.report.bars import MAX_BARS, BarGroup, bar_chart, chunks
from recforge.report.charts import bars_html, charts, curves_html
from recforge.report.comparison import best_rows, comparison
from recforge.report.labels import configurations, run_labels
from recforge.report.runs import Run
from recforge.report.series import title
from recforge.report.svg import TOP, colour, tick_labels, ticks

SVG = "{http://www.w3.org/2000/svg}"


def run(name, model, epochs, valid=None, lr=0.001, best=None, test=None, **config):
    """A run folder's content written out: ``epochs`` epochs of a falling loss, validation metrics from
    ``valid`` (metric -> list of values per epoch), a learning rate per epoch."""
    history = []
    for epoch in range(epochs):
        record = {
            "epoch": epoch,
            "loss": 1.0 / (epoch + 1),
            "lr": {"main": lr * (1 + epoch / 10)},
            "train_seconds": 0.5,
        }
        if valid:
            record["valid_result"] = {m: values[epoch] for m, values in valid.items()}
        history.append(record)
    metrics = {"model": model, "dataset": "ml-latest-small", "best_epoch": epochs - 1 if best is None else best}
    if test:
        metrics["test_result"] = test
    settings = {"model": model, "dataset": "ml-latest-small", "seed": 2020, "learning_rate": lr, **config}
    return Run(Path(f"/runs/{name}"), name, history, metrics, settings)


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def texts(chart: ET.Element, css: str) -> list[str]:
    return [t.text for t in chart.iter(f"{SVG}text") if t.get("class") == css]


def legend(chart: ET.Element) -> list[tuple[str, str]]:
    """(label, swatch tag) of each legend entry."""
    (box,) = [g for g in chart.iter(f"{SVG}g") if g.get("class") == "legend"]
    found = []
    for item in box:
        swatch, text = item[0], item.find(f"{SVG}text")
        found.append((text.find(f"{SVG}title").text, swatch.tag.removeprefix(SVG)))
    return found


def axis_labels(chart: ET.Element) -> tuple[str, str]:
    found = {t.get("class"): t.text for t in chart.iter(f"{SVG}text") if (t.get("class") or "").startswith("axis")}
    return found["axis-label x"], found["axis-label y"]


def test_ticks_of_one_axis_share_one_number_format():
    # The learning-rate axis that mixed 9.50e-04, 0.001 and 0.00105.
    assert tick_labels([0.00095, 0.001, 0.00105]) == ["0.00095", "0.00100", "0.00105"]
    assert tick_labels([0.0, 0.05, 0.1, 0.15]) == ["0.00", "0.05", "0.10", "0.15"]
    assert tick_labels([0.0, 10.0, 20.0]) == ["0", "10", "20"]
    assert tick_labels([5e-5, 1e-4, 1.5e-4]) == ["5.0e-5", "1.0e-4", "1.5e-4"]
    assert tick_labels([0.0, 2e5, 4e5]) == ["0", "2e5", "4e5"]
    for low, high in [(0.00093, 0.00107), (0.0, 0.31), (1e-6, 9e-6), (-2.5, 40.0)]:
        values = ticks(low, high, integer=False)
        shown = tick_labels(values)
        assert len({len(s.split("e")[0].partition(".")[2]) for s in shown}) == 1, shown  # the same decimals
        assert [float(s) for s in shown] == pytest.approx(values, rel=1e-9, abs=1e-15)


def test_every_chart_has_a_title_labelled_axes_and_its_own_legend():
    a = run("BPR-x-20250101-120000", "BPR", 4, {"recall@10": [0.1, 0.2, 0.3, 0.25]}, best=2)
    b = run("LightGCN-x-20250101-130000", "LightGCN", 3, {"recall@10": [0.2, 0.3, 0.35]}, n_layers=3)
    runs = [a, b]
    colours, labels = {a.name: colour(0), b.name: colour(1)}, run_labels(runs)
    assert labels == {a.name: "BPR", b.name: "LightGCN"}
    expected_y = {"loss:total": "loss", "valid:recall@10": "recall@10", "lr:main": "learning rate"}
    expected_title = {"loss:total": "training loss", "valid:recall@10": "validation: recall@10"}
    found = charts(runs, colours, labels)
    assert [c.keys[0] for c in found] == ["loss:total", "valid:recall@10", "lr:main", "seconds:train"]
    for chart in found:
        svg = parse(chart.svg())
        key = chart.keys[0]
        assert texts(svg, "title") == [expected_title.get(key, title(*key.split(":")))]
        assert axis_labels(svg) == ("epoch", expected_y.get(key, "seconds"))
        assert legend(svg) == [("BPR", "line"), ("LightGCN", "line"), ("best epoch (dashed, run colour)", "line")]
        # Each line in the colour of its legend entry.
        series = [g.get("stroke") for g in svg.iter(f"{SVG}g") if g.get("class") == "series"]
        swatches = [item[0].get("stroke") for item in svg.iter(f"{SVG}g") if item.get("class") == "legend-item"]
        assert series == swatches[:2] == [colour(0), colour(1)]
    # The single run's report titles a chart as the comparison does.
    (single,) = [c for c in charts([a], colours, {a.name: a.name}) if c.kind == "valid"]
    assert single.title == "validation: recall@10" and single.y_label == "recall@10"
    assert legend(parse(single.svg())) == [("recall@10", "line"), ("best epoch 2", "line")]


def test_a_one_point_run_is_a_visible_dot_and_marks_only_the_runs_drawn():
    trained = run("BPR-1", "BPR", 5, {"recall@10": [0.1, 0.2, 0.3, 0.3, 0.3], "auc": [0.6, 0.7, 0.8, 0.8, 0.8]}, best=3)
    fitted = run("ItemKNN-1", "ItemKNN", 1, {"recall@10": [0.35]})  # one epoch: one point
    runs = [trained, fitted]
    colours, labels = {trained.name: colour(0), fitted.name: colour(1)}, run_labels(runs)
    by_key = {c.keys[0]: parse(c.svg()) for c in charts(runs, colours, labels)}
    recall, auc = by_key["valid:recall@10"], by_key["valid:auc"]
    (dot,) = [c for c in recall.iter(f"{SVG}circle") if c.get("class") == "single"]
    assert float(dot.get("r")) >= 5  # as visible as a line, in the run's colour
    group = [g for g in recall.iter(f"{SVG}g") if g.get("data-run") == fitted.name and g.get("class") == "series"]
    assert group[0].get("fill") == colour(1) and ("ItemKNN", "circle") in legend(recall)
    markers = lambda chart: [g.get("data-run") for g in chart.iter(f"{SVG}g") if g.get("class") == "marker"]
    assert markers(recall) == [trained.name, fitted.name]
    assert markers(auc) == [trained.name]  # ItemKNN has no AUC: no best-epoch line of it there


def test_the_best_epoch_text_sits_above_the_plot_not_on_the_data():
    one = run("BPR-1", "BPR", 6, {"recall@10": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]})  # best = last epoch, top right
    for chart in charts([one], {one.name: colour(0)}, {one.name: one.name}):
        svg = parse(chart.svg())
        (text,) = [t for t in svg.iter(f"{SVG}text") if t.get("class") == "marker-text"]
        assert text.text == "best epoch 5" and float(text.get("y")) < TOP - 3 and text.get("text-anchor") == "end"


def test_bars_show_the_mean_and_spread_of_the_runs_that_share_a_configuration():
    seeds = [
        run(f"BPR-{s}", "BPR", 2, test={"recall@10": r, "ndcg@10": r / 2}, seed=s) for s, r in [(1, 0.3), (2, 0.4)]
    ]
    other = run("BPR-lr", "BPR", 2, test={"recall@10": 0.2, "ndcg@10": 0.1}, seed=1, lr=0.05)
    runs = [*seeds, other]
    colours = {r.name: colour(i) for i, r in enumerate(runs)}
    found = configurations(runs, colours)
    assert [(c.label, len(c.runs)) for c in found] == [("BPR lr=0.001 (2 runs)", 2), ("BPR lr=0.05", 1)]
    page = bars_html(runs, colours, run_labels(runs))
    (chart,) = [parse(svg) for svg in re.findall(r'<svg class="chart".*?</svg>', page, flags=re.S)]
    assert texts(chart, "title") == ["test results"] and axis_labels(chart) == ("metric", "value")
    bars = {(g.get("data-metric"), g.get("data-label")): g for g in chart.iter(f"{SVG}g") if g.get("class") == "bar"}
    pair = bars[("recall@10", "BPR lr=0.001 (2 runs)")]
    assert float(pair.get("data-mean")) == pytest.approx(0.35) and (pair.get("data-min"), pair.get("data-max")) == (
        "0.3",
        "0.4",
    )
    assert len(pair.findall(f"{SVG}path")) == 1 and len(pair.findall(f"{SVG}circle")) == 2
    single = bars[("ndcg@10", "BPR lr=0.05")]
    assert single.get("data-n") == "1" and not single.findall(f"{SVG}path")
    assert [shape for _, shape in legend(chart)] == ["rect", "rect", "path"]


def test_many_configurations_spread_over_several_bar_charts():
    assert chunks(["a", "b", "c"], 10) == [["a", "b", "c"]]
    assert chunks(["a", "b", "c"], 20) == [["a", "b"], ["c"]]
    assert chunks(["a", "b"], MAX_BARS + 1) == [["a"], ["b"]]
    svg = parse(bar_chart("t", ["m"], [BarGroup("x", "#000", {"m": [1.0]})]))
    (rect,) = [r for r in svg.iter(f"{SVG}rect") if r.get("fill") == "#000" and r.get("width") != "14"]
    assert float(svg.get("data-y0")) == 0.0  # bars start at zero


def test_curves_of_a_run_without_epochs_say_so():
    empty = Run(Path("/runs/x"), "x", [], {}, {})
    assert curves_html([empty], {"x": colour(0)}, {"x": "x"}) == '<p class="empty">No epochs recorded.</p>'


def test_the_best_of_a_metric_column_follows_the_metric_and_mixed_valid_metrics_are_not_ranked():
    a = run("a", "BPR", 2, {"mrr@10": [0.1, 0.2]}, test={"recall@10": 0.2, "logloss": 0.6}, valid_metric="MRR@10")
    b = run("b", "DeepFM", 2, {"auc": [0.7, 0.8]}, test={"recall@10": 0.1, "logloss": 0.5}, valid_metric="AUC")
    a.metrics["best_valid_score"], b.metrics["best_valid_score"] = 0.2, 0.8
    table = comparison([a, b], run_labels([a, b]))
    index = {c.title: i for i, c in enumerate(table.columns)}
    assert table.rows[1][index["best valid"]] == 0.8 and best_rows(table, index["best valid"]) == set()
    assert best_rows(table, index["test recall@10"]) == {0} and best_rows(table, index["test logloss"]) == {1}
    b.config["valid_metric"] = "MRR@10"  # one valid metric: its scores are ranked (bigger is better)
    table = comparison([a, b], run_labels([a, b]))
    index = {c.title: i for i, c in enumerate(table.columns)}
    assert best_rows(table, index["best valid MRR@10"]) == {1} and "valid metric" not in index
    assert table.shared == (("dataset", "ml-latest-small"), ("valid metric", "MRR@10"))
