"""The benchmark scripts still run and report (no timings are asserted: benchmarks measure, tests check)."""

import json
import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow  # whole runs on real data: in CI, not in the inner loop


BENCH = ROOT / "benchmarks"


def run(script, *args):
    done = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_recforge_driver_reports_every_stage(tiny_path):
    record = run(
        "recforge_driver.py",
        "--model",
        "BPR",
        "--dataset",
        "tiny",
        "--data-path",
        str(tiny_path),
        "--epochs",
        "2",
        "--order",
        "TO",
        "--set",
        "load_col={inter: [user_id, item_id, rating, timestamp]}",
        "--set",
        "topk=[3]",
        "--set",
        "valid_metric=MRR@3",
        "--set",
        "metrics=[Recall, MRR]",
    )
    assert record["system"] == "recforge" and record["epochs_run"] == 2 and record["interactions"] == 20
    assert set(record["metrics"]) == {"recall@3", "mrr@3"}
    assert all(record[k] > 0 for k in ("import", "load", "epoch", "eval", "test", "peak_rss_mb"))


def test_floor_scores_a_catalogue():
    record = run("floor.py", "score", "--users", "300", "--items", "50", "--batch-users", "128")
    assert record["system"] == "floor" and record["test"] > 0 and record["peak_rss_mb"] > 0


def test_report_without_recbole_says_so():
    sys.path.insert(0, str(BENCH))
    import compare

    scenario = compare.Scenario("bpr", "BPR", [])
    record = {
        "import": 2.0,
        "load": 0.1,
        "epoch": 0.15,
        "eval": 0.01,
        "test": 0.01,
        "peak_rss_mb": 390.0,
        "metrics": {"recall@10": 0.12},
    }
    scenario.records = {
        "recforge": [record, {**record, "epoch": 0.17}],
        "raw PyTorch floor": [{**record, "epoch": 0.2, "eval": 0.009}],
    }
    report = compare.render([scenario], 2, None, "")
    assert "**RecBole was not measured**" in report
    assert "| recforge | 2.00 (2.00–2.00) | 0.100 (0.100–0.100) | 0.160 (0.150–0.170) |" in report
    assert "| BPR train epoch, recforge / floor | ≤ 1.3 | 0.80 | met |  |" in report
    assert "| BPR train epoch, recforge / RecBole | ≤ 0.2 | not measured |" in report
