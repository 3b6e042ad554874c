"""The processed-data cache: hits, stale files, changed settings, damaged entries, bypass."""

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, entries
from recforge import Config, create_dataset
from recforge.cli import main
from recforge.data.columns import SeqColumn


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("RECFORGE_CACHE_DIR", str(folder))
    return folder / "datasets"


@pytest.fixture
def data(tmp_path):
    """A private copy of tests/data/features (the tests modify it)."""
    shutil.copytree(ROOT / "tests" / "data" / "features", tmp_path / "data" / "features")
    return tmp_path / "data"


def damage(path, keep_bytes):
    """A damaged copy of ``path`` put in its place (a data set that maps the original keeps reading it: recforge
    never changes an entry's files in place, it removes a damaged entry and writes a new one)."""
    damaged = path.with_suffix(".damaged")
    damaged.write_bytes(path.read_bytes()[:keep_bytes])
    damaged.replace(path)


def one_warning(caplog) -> str:
    """The one warning about a cache logged (and it is one line)."""
    warnings = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    (message,) = [warning for warning in warnings if " cache " in warning]
    assert "\n" not in message
    return message


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
    (entry,) = entries(cache_dir / "features")
    assert "from the cache" not in caplog.text
    caplog.clear()
    second = build(data)
    assert "loaded processed features from the cache" in caplog.text
    same(first, second)
    assert second.token2id("item_id", "i3") == 3 and second.field2id_token["item_id"].dtype == object


def test_the_dataset_class_does_no_cache_io_of_its_own(data, cache_dir):
    """``create_dataset`` reads and writes the cache; ``Dataset(config)`` only processes the files."""
    from recforge.data import Dataset

    settings = {"data_path": str(data), "load_col": None, "preload_weight": {"item_id": "vec"}}
    config = Config("Pop", "features", config_dict=settings)
    plain = Dataset(config)
    assert not cache_dir.exists() and plain.cache_entry is None
    cached = create_dataset(config)
    (entry,) = entries(cache_dir / "features")
    assert cached.cache_entry == entry
    same(plain, cached)


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
    assert len(list(entries(cache_dir / "features"))) == 3


def test_a_damaged_entry_is_rebuilt(data, cache_dir, caplog):
    reference = build(data)
    (entry,) = entries(cache_dir / "features")
    column = entry / "inter" / "item_id.npy"
    size = column.stat().st_size
    damage(column, 100)
    again = build(data)
    assert one_warning(caplog) == (
        f"processed-data cache {entry} does not match its manifest (inter/item_id.npy has 100 bytes, not {size}); "
        "rebuilding it"
    )
    same(reference, again)
    caplog.clear()
    damage(entry / "meta.json", 50)
    again = build(data)
    assert one_warning(caplog).startswith(f"processed-data cache {entry} is unreadable (JSONDecodeError")
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


# -- entries are verified against their manifest when opened --------------------------------------------------


def swap(a, b):
    """Exchange the files ``a`` and ``b`` (each keeps its inode, size and times: only the names change)."""
    parked = a.with_suffix(".parked")
    os.replace(a, parked)
    os.replace(b, a)
    os.replace(parked, b)


def rebuilt_with_one_warning(data, caplog, entry, what):
    """Load ``data`` again: one warning names ``entry`` and ``what``, and the data set equals a cache-free build;
    the rewritten entry then serves the next load without a warning."""
    caplog.clear()
    again = build(data)
    assert one_warning(caplog) == f"processed-data cache {entry} does not match its manifest ({what}); rebuilding it"
    fresh = build(data, data_cache=False)
    same(fresh, again)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="recforge"):
        same(fresh, build(data))
    assert "loaded processed features from the cache" in caplog.text and "WARNING" not in caplog.text


def test_two_swapped_arrays_are_detected(data, cache_dir, caplog):
    build(data)
    (entry,) = entries(cache_dir / "features")
    users, items = entry / "inter" / "user_id.npy", entry / "inter" / "item_id.npy"
    assert np.load(users).shape == np.load(items).shape and np.load(users).dtype == np.load(items).dtype
    swap(users, items)
    rebuilt_with_one_warning(
        data, caplog, entry, "inter/item_id.npy has other content; inter/user_id.npy has other content"
    )


def test_an_array_of_another_entry_is_detected(data, cache_dir, caplog):
    """The same-named file of another entry (the data with one rating changed): same shape, other content."""
    build(data)
    (entry,) = entries(cache_dir / "features")
    inter = data / "features" / "features.inter"
    original = inter.read_text()
    inter.write_text(original.replace("u1\ti2\t4", "u1\ti2\t2"))
    build(data)
    (other,) = set(entries(cache_dir / "features")) - {entry}
    ratings = entry / "inter" / "rating.npy"
    assert np.array_equal(np.load(ratings), [4.0, 5.0, 3.0])
    assert np.array_equal(np.load(other / "inter" / "rating.npy"), [2.0, 5.0, 3.0])
    shutil.copy2(other / "inter" / "rating.npy", ratings)  # times copied too
    inter.write_text(original)
    rebuilt_with_one_warning(data, caplog, entry, "inter/rating.npy has other content")


def test_an_array_changed_in_place_with_its_times_restored_is_detected(data, cache_dir, caplog):
    build(data)
    (entry,) = entries(cache_dir / "features")
    ratings = entry / "inter" / "rating.npy"
    before = ratings.stat()
    with open(ratings, "r+b") as handle:  # the last rating, 3.0, becomes 1.0: same size, same inode
        handle.seek(-8, os.SEEK_END)
        handle.write(np.float64(1.0).tobytes())
    os.utime(ratings, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = ratings.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)
    assert np.array_equal(np.load(ratings), [4.0, 5.0, 1.0])
    rebuilt_with_one_warning(data, caplog, entry, "inter/rating.npy has other content")


def reseal(entry, change):
    """Apply ``change`` to the entry's meta.json and seal it again (as if the entry had been written so)."""
    from recforge.data.cache import entries as cache_entry

    meta = json.loads((entry / "meta.json").read_text())
    change(meta)
    meta["seal"] = cache_entry.seal(meta)
    (entry / "meta.json").write_text(json.dumps(meta))


def test_an_entry_of_another_version_is_rebuilt(data, cache_dir, caplog):
    from recforge.data.cache.entries import recforge_version

    build(data)
    (entry,) = entries(cache_dir / "features")
    reseal(entry, lambda meta: meta["built_from"].update(recforge="0.0.1"))
    rebuilt_with_one_warning(data, caplog, entry, f"built by recforge 0.0.1, this is {recforge_version()}")
    meta = json.loads((entry / "meta.json").read_text())
    assert meta["built_from"]["recforge"] == recforge_version()
    meta["processing_log"] = ["edited by hand"]  # not sealed again
    (entry / "meta.json").write_text(json.dumps(meta))
    rebuilt_with_one_warning(data, caplog, entry, "meta.json differs from its seal")


def counting_digests(monkeypatch):
    """Count the array digests ``cache_entry`` computes (writes and verifications)."""
    from recforge.data.cache import entries as cache_entry

    calls = []
    real = cache_entry.array_digest
    monkeypatch.setattr(cache_entry, "array_digest", lambda handle: calls.append(handle.name) or real(handle))
    return calls


def refuse_digests(monkeypatch):
    def refuse(handle):
        raise AssertionError(f"{handle.name} read to verify it")

    monkeypatch.setattr("recforge.data.cache.entries.array_digest", refuse)


def test_an_unchanged_entry_is_opened_without_reading_its_arrays(data, cache_dir, caplog, monkeypatch):
    digests = counting_digests(monkeypatch)
    first = build(data)  # written, then mapped back from the entry: each array digested once, when written
    (entry,) = entries(cache_dir / "features")
    arrays = sorted(str(path.relative_to(entry)) for path in entry.rglob("*.npy"))
    assert sorted(str(Path(name).relative_to(entry.parent)).split("/", 1)[1] for name in digests) == arrays
    assert isinstance(first.inter_feat["rating"], np.memmap)
    refuse_digests(monkeypatch)
    caplog.set_level(logging.INFO, logger="recforge")
    caplog.clear()
    second = build(data)
    assert "loaded processed features from the cache" in caplog.text and "WARNING" not in caplog.text
    same(build(data, data_cache=False), second)


# -- the split and histories cached with the processed data ----------------------------------------------------


def prepare(tiny_path, **overrides):
    from conftest import tiny_config
    from recforge import data_preparation

    config = tiny_config(tiny_path, "BPR", **{"data_cache": True, **overrides})
    return data_preparation(config, create_dataset(config))


def loader_state(loaders):
    """Everything the loaders hand to a trainer: training columns, evaluation batches, histories."""
    train, valid, test = loaders
    state = {f"train/{k}": np.asarray(v) for k, v in train.dataset.inter_feat.items()}
    state["train/sampler"] = train.sampler.history.keys.numpy()
    for name, loader in (("valid", valid), ("test", test)):
        if loader is None:
            continue
        state[f"{name}/positives"] = loader.positives.keys.numpy()
        state[f"{name}/mask"] = loader.history.keys.numpy()
        for i, batch in enumerate(loader):
            for j, part in enumerate(batch[1:]):
                state[f"{name}/{i}/{j}"] = (
                    np.concatenate([np.asarray(t).ravel() for t in part])
                    if isinstance(part, tuple)
                    else np.asarray(part)
                )
            state[f"{name}/{i}/users"] = batch[0]["user_id"].numpy()
    return state


@pytest.mark.parametrize(
    "eval_args",
    [
        {"split": {"RS": [0.6, 0.2, 0.2]}, "order": "RO", "group_by": "user", "mode": "full"},
        {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "uni2"},
        {"split": {"RS": [0.5, 0.5]}, "order": "RO", "group_by": None, "mode": {"valid": "full", "test": "pop3"}},
    ],
)
def test_a_second_preparation_reads_the_split_and_histories(tiny_path, cache_dir, monkeypatch, eval_args):
    fresh = loader_state(prepare(tiny_path, eval_args=eval_args, data_cache=False))
    first = loader_state(prepare(tiny_path, eval_args=eval_args))
    (entry,) = entries(cache_dir / "tiny")
    (prepared,) = entries(entry / "prepared")
    import recforge.data.split.rules as split

    def refuse(*args):
        raise AssertionError("split again")

    monkeypatch.setattr(split, "split_indices", refuse)
    monkeypatch.setattr("recforge.data.split.history.UserHistory.from_pairs", refuse)
    second = loader_state(prepare(tiny_path, eval_args=eval_args))
    for state in (first, second):
        assert state.keys() == fresh.keys()
        for key in fresh:
            assert np.array_equal(state[key], fresh[key]) and state[key].dtype == fresh[key].dtype, key
    assert entries(entry / "prepared") == [prepared]


def test_another_split_or_seed_is_not_served_stale(tiny_path, cache_dir):
    prepare(tiny_path)
    for overrides in ({"seed": 7}, {"eval_args": {"split": {"RS": [0.4, 0.3, 0.3]}, "order": "RO"}}):
        cached = loader_state(prepare(tiny_path, **overrides))
        fresh = loader_state(prepare(tiny_path, data_cache=False, **overrides))
        assert all(np.array_equal(cached[key], fresh[key]) for key in fresh)
    (entry,) = entries(cache_dir / "tiny")
    assert len(entries(entry / "prepared")) == 3


def test_a_damaged_prepared_entry_is_rebuilt(tiny_path, cache_dir, caplog):
    reference = loader_state(prepare(tiny_path))
    (entry,) = entries(cache_dir / "tiny")
    (prepared,) = entries(entry / "prepared")
    column = prepared / "history" / "train" / "positives" / "keys.npy"
    damage(column, 90)
    again = loader_state(prepare(tiny_path))
    assert "prepared-split cache" in caplog.text and "rebuilding it" in caplog.text
    assert all(np.array_equal(again[key], reference[key]) for key in reference)
    assert np.array_equal(np.load(column), reference["train/sampler"])


def test_a_file_digest_is_remembered_only_for_files_older_than_a_tick(tmp_path, monkeypatch):
    import time

    from recforge.data.cache import datasets as cache

    young, old = tmp_path / "young.inter", tmp_path / "old.inter"
    young.write_text("a\n")
    old.write_text("b\n")
    hour_ago = time.time_ns() - 3_600 * 10**9
    os.utime(old, ns=(hour_ago, hour_ago))
    reads = []
    monkeypatch.setattr(cache, "file_digest", lambda path: reads.append(path.name) or path.read_text())
    assert cache.remembered_digests([young, old], tmp_path) == {"young.inter": "a\n", "old.inter": "b\n"}
    assert cache.remembered_digests([young, old], tmp_path) == {"young.inter": "a\n", "old.inter": "b\n"}
    assert reads == ["young.inter", "old.inter", "young.inter"]
    old.write_text("c\n")  # same size, but a new modification time
    os.utime(old, ns=(hour_ago + 1, hour_ago + 1))
    assert cache.remembered_digests([old], tmp_path) == {"old.inter": "c\n"}
    old.write_text("d\n")  # same size, the modification time set back: the change time tells
    os.utime(old, ns=(hour_ago + 1, hour_ago + 1))
    assert cache.remembered_digests([old], tmp_path) == {"old.inter": "d\n"}


def test_a_swapped_history_gives_the_loaders_of_a_fresh_preparation(tiny_path, cache_dir, caplog, monkeypatch):
    fresh = loader_state(prepare(tiny_path, data_cache=False))
    prepare(tiny_path)
    (entry,) = entries(cache_dir / "tiny")
    (prepared,) = entries(entry / "prepared")
    valid, test = (prepared / "history" / phase / "positives" / "keys.npy" for phase in ("valid", "test"))
    assert np.load(valid).shape == np.load(test).shape and not np.array_equal(np.load(valid), np.load(test))
    swap(valid, test)
    caplog.clear()
    again = loader_state(prepare(tiny_path))
    assert one_warning(caplog) == (
        f"prepared-split cache {prepared} does not match its manifest (history/test/positives/keys.npy has other "
        "content; history/valid/positives/keys.npy has other content); rebuilding it"
    )
    assert again.keys() == fresh.keys() and all(np.array_equal(again[key], fresh[key]) for key in fresh)
    refuse_digests(monkeypatch)  # the rewritten sub-entry (and the processed data) open without reading arrays
    caplog.clear()
    third = loader_state(prepare(tiny_path))
    assert not caplog.records and all(np.array_equal(third[key], fresh[key]) for key in fresh)
    assert entries(entry / "prepared") == [prepared]
