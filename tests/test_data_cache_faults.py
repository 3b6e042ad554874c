"""Cache entries that are not what they claim: swapped files at the command line (the run rebuilds the entry with
one warning line, ends with exit status 0 and no traceback, and its metrics equal those of an uncached run), extra
and missing arrays, entries moved under another key, and a copied cache (verified once, then trusted)."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, TINY_INTER, entries, tiny_args, write_atomic
from recforge.cli import main
from test_cli_faults import HEADER, digest
from test_data_cache import (
    build,
    counting_digests,
    one_warning,
    prepare,
    rebuilt_with_one_warning,
    refuse_digests,
    same,
)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("RECFORGE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "datasets"


@pytest.fixture
def data(tmp_path) -> Path:
    """A private copy of tests/data/features (the tests modify it)."""
    shutil.copytree(ROOT / "tests" / "data" / "features", tmp_path / "data" / "features")
    return tmp_path / "data"


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    """A data folder with the tiny data set; the cache under it."""
    monkeypatch.setenv("RECFORGE_CACHE_DIR", str(tmp_path / "cache"))
    write_atomic(tmp_path, "tiny", "inter", HEADER, [list(r) for r in TINY_INTER])
    return tmp_path


def run(root: Path, capsys, name: str, *extra: str) -> tuple[int, str, dict]:
    """Run BPR for two epochs into ``root/name``; ``(status, stderr, metrics.json)``."""
    args = [*tiny_args(root, "BPR"), "--epochs", "2", "--checkpoint_dir", str(root / name), *extra]
    capsys.readouterr()
    code = main(args)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    folders = list((root / name).iterdir()) if code == 0 else []
    return code, err, json.loads((folders[0] / "metrics.json").read_text()) if len(folders) == 1 else {}


def results(metrics: dict) -> tuple:
    return metrics["best_valid_result"], metrics["test_result"]


def swap(a: Path, b: Path) -> None:
    parked = a.with_suffix(".parked")
    os.replace(a, parked)
    os.replace(b, a)
    os.replace(parked, b)


@pytest.mark.parametrize("where", ["processed data", "prepared split"])
def test_swapped_cache_files_are_rebuilt_with_one_warning(root, capsys, where):
    code, _, uncached = run(root, capsys, "uncached", "--no-cache")
    assert code == 0 and results(uncached)[1]["recall@3"] > 0
    code, _, first = run(root, capsys, "first")
    assert code == 0 and results(first) == results(uncached)
    (entry,) = entries(root / "cache" / "datasets" / "tiny")
    (prepared,) = entries(entry / "prepared")
    if where == "processed data":
        folder, pair, label = entry / "inter", ("user_id.npy", "item_id.npy"), f"processed-data cache {entry}"
    else:
        folder, pair, label = prepared / "part0", ("user_id.npy", "item_id.npy"), f"prepared-split cache {prepared}"
    a, b = folder / pair[0], folder / pair[1]
    assert np.load(a).shape == np.load(b).shape and not np.array_equal(np.load(a), np.load(b))
    swap(a, b)
    before = digest(root / "tiny")
    code, err, again = run(root, capsys, "again")
    assert digest(root / "tiny") == before
    (line,) = [line for line in err.splitlines() if "cache" in line]
    assert line.startswith(f"{label} does not match its manifest (") and line.endswith("); rebuilding it")
    assert f"{pair[0]} has other content" in line and f"{pair[1]} has other content" in line
    assert code == 0 and results(again) == results(uncached)
    code, err, third = run(root, capsys, "third")  # the rebuilt entry is served without a warning
    assert code == 0 and "cache" not in err and results(third) == results(uncached)


def test_an_extra_or_missing_array_is_detected(data, cache_dir, caplog):
    build(data)
    (entry,) = entries(cache_dir / "features")
    shutil.copy2(entry / "inter" / "rating.npy", entry / "inter" / "score.npy")
    rebuilt_with_one_warning(data, caplog, entry, "inter/score.npy is not in the manifest")
    (entry / "inter" / "rating.npy").unlink()
    rebuilt_with_one_warning(data, caplog, entry, "inter/rating.npy is missing")


def test_an_entry_moved_under_another_key_is_rebuilt(data, cache_dir, caplog):
    build(data)
    (entry,) = entries(cache_dir / "features")
    inter = data / "features" / "features.inter"
    inter.write_text(inter.read_text().replace("u1\ti2\t4", "u1\ti2\t2"))
    build(data)
    (other,) = set(entries(cache_dir / "features")) - {entry}
    shutil.rmtree(other)
    entry.rename(other)  # the entry of the old data under the key of the new data
    rebuilt_with_one_warning(
        data, caplog, other, f"key {entry.name}, expected {other.name}; sources differ: features.inter"
    )
    assert build(data, data_cache=False).inter_feat["rating"][0] == 2.0


def test_a_copied_cache_is_verified_once_then_trusted(data, cache_dir, caplog, monkeypatch, tmp_path):
    """A copy has new inodes and change times: each array is digested once, its new stamp recorded (once older than
    RACY_NS, here 0), and the next open reads nothing."""
    build(data)
    (entry,) = entries(cache_dir / "features")
    shutil.copytree(cache_dir.parent, tmp_path / "copy")
    monkeypatch.setenv("RECFORGE_CACHE_DIR", str(tmp_path / "copy"))
    monkeypatch.setattr("recforge.data.cache.entries.RACY_NS", 0)
    digests = counting_digests(monkeypatch)
    caplog.set_level(logging.INFO, logger="recforge")
    caplog.clear()
    copied = build(data)
    assert "from the cache" in caplog.text and "WARNING" not in caplog.text
    assert len(digests) == len(list(entry.rglob("*.npy"))) > 10
    refuse_digests(monkeypatch)
    same(copied, build(data))
    same(build(data, data_cache=False), copied)


def test_a_prepared_entry_moved_under_another_data_set_entry_is_rebuilt(tiny_path, cache_dir, caplog):
    prepare(tiny_path)
    (entry,) = entries(cache_dir / "tiny")
    (prepared,) = entries(entry / "prepared")
    stranger = cache_dir / "tiny" / ("0" * 32)
    (stranger / "prepared").mkdir(parents=True)
    prepared.rename(stranger / "prepared" / prepared.name)
    from recforge.data.cache.splits import PreparedCache

    moved = PreparedCache(stranger / "prepared" / prepared.name)
    assert not moved.hit and not moved.arrays
    assert one_warning(caplog).endswith(f"(entry {entry.name}, expected {stranger.name}); rebuilding it")
