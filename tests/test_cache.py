"""The processed-data cache: hits, stale files, changed settings, damaged entries, bypass."""

import logging

import numpy as np
import pytest

from conftest import ROOT
from recforge import Config, create_dataset
from recforge.cli import main
from recforge.data.atomic import SeqColumn


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("RECFORGE_CACHE_DIR", str(folder))
    return folder / "datasets"


@pytest.fixture
def data(tmp_path):
    """A private copy of tests/data/features (the tests modify it)."""
    import shutil

    shutil.copytree(ROOT / "tests" / "data" / "features", tmp_path / "data" / "features")
    return tmp_path / "data"


def build(data, **config):
    return create_dataset(
        Config(
            "Pop",
            "features",
            config_dict={"data_path": str(data), "load_col": None, "preload_weight": {"item_id": "vec"}, **config},
        )
    )


def same(a, b):
    assert a.field2type == b.field2type and a.field2source == b.field2source
    assert {k: list(v) for k, v in a.field2id_token.items()} == {k: list(v) for k, v in b.field2id_token.items()}
    for name in ("inter_feat", "user_feat", "item_feat"):
        ta, tb = getattr(a, name), getattr(b, name)
        assert ta.keys() == tb.keys()
        for field in ta:
            if isinstance(ta[field], SeqColumn):
                assert np.array_equal(ta[field].offsets, tb[field].offsets)
                assert np.array_equal(ta[field].values, tb[field].values)
            else:
                assert np.array_equal(ta[field], tb[field], equal_nan=True) and ta[field].dtype == tb[field].dtype
    assert np.array_equal(a.get_preload_weight("item_id"), b.get_preload_weight("item_id"))


def test_second_load_comes_from_the_cache(data, cache_dir, caplog):
    caplog.set_level(logging.INFO, logger="recforge")
    first = build(data)
    (entry,) = (cache_dir / "features").glob("*.npz")
    assert "from the cache" not in caplog.text
    caplog.clear()
    second = build(data)
    assert "loaded processed features from the cache" in caplog.text
    same(first, second)
    assert second.token2id("item_id", "i3") == 3 and second.field2id_token["item_id"].dtype == object


def test_a_changed_file_or_setting_is_not_served_stale(data, cache_dir, caplog):
    caplog.set_level(logging.INFO, logger="recforge")
    build(data)
    path = data / "features" / "features.inter"
    path.write_text(path.read_text() + "u2\ti3\t2\n")
    caplog.clear()
    changed = build(data)
    assert "from the cache" not in caplog.text and changed.inter_num == 4
    caplog.clear()
    filtered = build(data, val_interval={"rating": "[3,inf)"})
    assert "from the cache" not in caplog.text and filtered.inter_num == 3
    caplog.clear()
    build(data, learning_rate=0.5)  # not a processing key: same entry
    assert "from the cache" in caplog.text
    assert len(list((cache_dir / "features").glob("*.npz"))) == 3


def test_a_damaged_entry_is_rebuilt(data, cache_dir, caplog):
    reference = build(data)
    (entry,) = (cache_dir / "features").glob("*.npz")
    entry.write_bytes(entry.read_bytes()[:100])
    again = build(data)
    assert "is unreadable" in caplog.text and "rebuilding it" in caplog.text
    same(reference, again)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="recforge"):
        third = build(data)  # the rewritten entry is complete: served from the cache, equal to the original
    assert "from the cache" in caplog.text and "unreadable" not in caplog.text
    same(reference, third)


def test_bypass_and_replayed_filter_log(data, cache_dir, caplog, tiny_path, capsys):
    build(data, data_cache=False)
    assert not cache_dir.exists()
    caplog.set_level(logging.INFO, logger="recforge")
    config = {"data_path": str(data), "load_col": None, "val_interval": {"rating": "[4,inf)"}}
    create_dataset(Config("Pop", "features", config_dict=config))
    caplog.clear()
    create_dataset(Config("Pop", "features", config_dict=config))
    assert "filtering removed 1 from .inter: rows outside val_interval" in caplog.text
    assert "(when it was processed)" in caplog.text
    from conftest import tiny_args

    assert main([*tiny_args(tiny_path), "--no-cache"]) == 0
    assert not (cache_dir / "tiny").exists()
