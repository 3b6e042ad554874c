"""benchmark_filename: a split fixed in files (<dataset>.<part>.inter) read, filtered and used as the split."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from conftest import entries, write_atomic
from recforge import Config, create_dataset, data_preparation
from recforge.cli import main
from recforge.data.split.rules import split_indices
from recforge.errors import ConfigError, DataError
from recforge.quick_start import run

PARTS = ["train", "valid", "test"]
HEADER = ["user_id:token", "item_id:token", "rating:float"]
# Each part of 'parted': rows are (user, item, rating).
TRAIN = [("u1", "i1", 5), ("u1", "i2", 1), ("u2", "i1", 4), ("u2", "i3", 5), ("u3", "i2", 4), ("u3", "i4", 2)]
VALID = [("u1", "i3", 4), ("u2", "i2", 1), ("u3", "i1", 5)]
TEST = [("u1", "i4", 5), ("u2", "i4", 3), ("u3", "i3", 1), ("u9", "i9", 5), ("u2", "i3", 4)]


def write_parts(root, name, parts, header=HEADER):
    """``<root>/<name>/<name>.<part>.inter`` for each ``{part: rows}``."""
    return {
        part: write_atomic(root, name, f"{part}.inter", header, [list(r) for r in rows]) for part, rows in parts.items()
    }


def parted_config(root, model="Pop", **overrides):
    values = {
        "data_path": str(root),
        "checkpoint_dir": str(root / "saved"),
        "load_col": None,
        "benchmark_filename": PARTS,
        "show_progress": False,
        "topk": [1],
        "valid_metric": "Recall@1",
        "data_cache": False,
        **overrides,
    }
    return Config(model, "parted", config_dict=values, cmd_args={})


def pairs(data):
    """(user, item) tokens of a loader's interactions, in order (None for no loader)."""
    if data is None:
        return None
    ds = data.dataset
    users, items = ds.id2token("user_id", ds.inter_feat["user_id"]), ds.id2token("item_id", ds.inter_feat["item_id"])
    return list(zip(users, items, strict=True))


def tokens(rows):
    return [(user, item) for user, item, *_ in rows]


def prepared_pairs(config):
    return [pairs(data) for data in data_preparation(config, create_dataset(config))]


def test_the_files_are_the_split(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="recforge")
    write_parts(tmp_path, "parted", {"train": TRAIN, "valid": VALID, "test": TEST})
    eval_args = {"split": {"RS": [0.5, 0.5]}, "order": "RO", "group_by": None}  # not used
    assert prepared_pairs(parted_config(tmp_path, eval_args=eval_args)) == [tokens(TRAIN), tokens(VALID), tokens(TEST)]
    assert "the split is given by the files parted.train.inter, parted.valid.inter, parted.test.inter" in caplog.text
    assert "eval_args.split, group_by and order (eval_args set in config_dict) are not used" in caplog.text
    # Two parts: train and test, no validation.
    config = parted_config(tmp_path, benchmark_filename=["train", "test"])
    assert prepared_pairs(config) == [tokens(TRAIN), None, tokens(TEST)]
    dataset = create_dataset(config)  # one vocabulary over the parts, ids by first appearance
    assert list(dataset.field2id_token["item_id"]) == ["[PAD]", "i1", "i2", "i3", "i4", "i9"]


def test_filtered_rows_never_change_part(tmp_path):
    write_parts(tmp_path, "parted", {"train": TRAIN, "valid": VALID, "test": TEST})
    # rating >= 2 drops (u1, i2) of train, (u2, i2) of valid, (u3, i3) of test; the user count drops u9's only row;
    # rm_dup_inter drops the test row (u2, i3), which repeats a training row. RecBole's slices by file sizes would put
    # (u1, i3) of valid into train.
    config = parted_config(
        tmp_path, val_interval={"rating": "[2,inf)"}, user_inter_num_interval="[2,inf)", rm_dup_inter="first"
    )
    train, valid, test = prepared_pairs(config)
    assert train == [("u1", "i1"), ("u2", "i1"), ("u2", "i3"), ("u3", "i2"), ("u3", "i4")]
    assert valid == [("u1", "i3"), ("u3", "i1")]
    assert test == [("u1", "i4"), ("u2", "i4")]
    # A training part left empty by the filters is an error.
    write_parts(tmp_path, "parted", {"first": [("u9", "i9", 1)]})
    with pytest.raises(DataError, match=r"no interaction of the training part .*parted\.first\.inter \(bench"):
        prepared_pairs(
            parted_config(tmp_path, val_interval={"rating": "[2,inf)"}, benchmark_filename=["first", "test"])
        )


def test_missing_part_and_mismatched_header(tmp_path):
    paths = write_parts(tmp_path, "parted", {"train": TRAIN, "valid": VALID})
    missing = tmp_path / "parted" / "parted.test.inter"
    with pytest.raises(DataError) as error:
        create_dataset(parted_config(tmp_path))
    assert str(error.value) == (
        f"config key 'benchmark_filename' ['train', 'valid', 'test']: part file(s) not found: {missing} "
        "(each part <part> is read from parted.<part>.inter)"
    )
    write_parts(tmp_path, "parted", {"test": tokens(TEST)}, header=HEADER[:2])
    with pytest.raises(DataError) as error:
        create_dataset(parted_config(tmp_path))
    assert str(error.value) == (
        f"{missing}: the header (user_id:token item_id:token) differs from the header of {paths['train']} "
        "(user_id:token item_id:token rating:float); the parts of benchmark_filename need the same columns, in the "
        "same order"
    )


@pytest.mark.parametrize("parts", [["train", "valid", "test", "more"], ["train", "train"], ["a/b", "test"]])
def test_part_names_are_checked(tmp_path, parts):
    write_parts(tmp_path, "parted", {"train": TRAIN, "test": TEST})
    with pytest.raises(ConfigError) as error:
        create_dataset(parted_config(tmp_path, benchmark_filename=parts))
    assert str(error.value) == (
        f"config key 'benchmark_filename': {parts} is not 2 or 3 distinct part names (train, [valid,] test) that can "
        "be part of a file name, e.g. [train, valid, test]"
    )


def write_timed(root, n_users=30, n_items=150, per_user=12):
    """'timed': interactions in time order, user after user (so the split's parts, grouped by user in RecBole's
    order, keep the file's order); each user first brings five new items, so every item and user first appears in
    a training row and the parts keep the ids of the whole file. A link and a triple per item."""
    rng = np.random.default_rng(0)
    rows, new = [], n_items // n_users
    for user in range(n_users):
        seen = (user + 1) * new
        items = [*range(user * new, seen), *rng.integers(seen, size=per_user - new)]
        rows += [[f"u{user}", f"i{item}", int(rng.integers(1, 6)), len(rows) + k] for k, item in enumerate(items)]
    header = ["user_id:token", "item_id:token", "rating:float", "timestamp:float"]
    write_atomic(root, "timed", "inter", header, rows)
    write_atomic(
        root, "timed", "link", ["item_id:token", "entity_id:token"], [[f"i{i}", f"e{i}"] for i in range(n_items)]
    )
    triples = [[f"e{i}", "genre", f"g{i % 4}"] for i in range(n_items)]
    write_atomic(root, "timed", "kg", ["head_id:token", "relation_id:token", "tail_id:token"], triples)
    return header, rows


MODELS = {
    "BPR-full": ("BPR", {"eval_args": {"mode": "full"}}),
    "BPR-uni100": ("BPR", {"eval_args": {"mode": "uni100"}}),
    "CKE": ("CKE", {"eval_args": {"mode": "full"}}),
    "FM": (
        "FM",
        {
            "eval_args": {"mode": "labeled"},
            "threshold": {"rating": 3},
            "metrics": ["AUC", "LogLoss"],
            "valid_metric": "AUC",
            "train_neg_sample_args": None,
        },
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(MODELS))
def test_metrics_equal_those_of_the_computed_split(tmp_path, case, one_thread):
    model, settings = MODELS[case]
    header, rows = write_timed(tmp_path)
    split = {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", **settings["eval_args"]}
    values = {
        "data_path": str(tmp_path),
        "checkpoint_dir": str(tmp_path / "saved"),
        "load_col": None,
        "show_progress": False,
        "epochs": 2,
        "train_batch_size": 64,
        "topk": [5],
        "metrics": ["Recall", "NDCG", "MRR"],
        "valid_metric": "NDCG@5",
        "data_cache": False,
        **settings,
        "eval_args": split,
    }
    dataset = create_dataset(Config(model, "timed", config_dict=values, cmd_args={}))
    assert dataset.inter_num == len(rows)  # nothing filtered: row i is line i of the file
    parts = {name: [rows[i] for i in index] for name, index in zip(PARTS, split_indices(dataset), strict=True)}
    assert all(parts.values())
    write_parts(tmp_path, "timed", parts, header)
    computed = run(model, "timed", config_dict=values, saved=False, verbose=False, cmd_args={})
    (tmp_path / "timed" / "timed.inter").unlink()  # the parts alone are read
    given = run(
        model, "timed", config_dict={**values, "benchmark_filename": PARTS}, saved=False, verbose=False, cmd_args={}
    )
    assert given["test_result"] == computed["test_result"]
    assert given["best_valid_result"] == computed["best_valid_result"]
    assert all(np.isfinite(v) for v in given["test_result"].values())


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("RECFORGE_CACHE_DIR", str(folder))
    return folder / "datasets"


def test_the_cache_serves_the_parts_and_never_stale_ones(tmp_path, cache_dir, caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger="recforge")
    write_parts(tmp_path, "parted", {"train": TRAIN, "valid": VALID, "test": TEST})
    write_atomic(tmp_path, "parted", "inter", HEADER, [list(r) for r in TRAIN + VALID + TEST])
    computed = prepared_pairs(parted_config(tmp_path, data_cache=True, benchmark_filename=None))
    caplog.clear()
    expected = [tokens(TRAIN), tokens(VALID), tokens(TEST)]
    assert computed != expected
    assert prepared_pairs(parted_config(tmp_path, data_cache=True)) == expected  # not the entry of parted.inter
    assert "from the cache" not in caplog.text
    assert len(entries(cache_dir / "parted")) == 2
    import recforge.data.split.rules as split

    def refuse(*args):
        raise AssertionError("split again")

    with monkeypatch.context() as patch:
        patch.setattr(split, "split_indices", refuse)
        caplog.clear()
        assert prepared_pairs(parted_config(tmp_path, data_cache=True)) == expected
        assert "loaded processed parted from the cache" in caplog.text
    path = tmp_path / "parted" / "parted.test.inter"
    path.write_text(path.read_text() + "u3\ti2\t3\n")
    caplog.clear()
    assert prepared_pairs(parted_config(tmp_path, data_cache=True)) == [*expected[:2], [*tokens(TEST), ("u3", "i2")]]
    assert "from the cache" not in caplog.text
    caplog.clear()  # the parts in another order are other data
    reordered = prepared_pairs(parted_config(tmp_path, data_cache=True, benchmark_filename=["valid", "train", "test"]))
    assert reordered[0] == tokens(VALID) and "from the cache" not in caplog.text


def test_the_command_line(tmp_path):
    write_parts(tmp_path, "parted", {"train": TRAIN, "valid": VALID, "test": TEST})
    args = ["--model", "BPR", "--dataset", "parted", "--data_path", str(tmp_path), "--epochs", "1"]
    args += ["--topk", "[1, 2]", "--valid_metric", "Recall@2", "--show_progress=false", "--load_col", "~"]
    code = main(
        ["run", *args, "--checkpoint_dir", str(tmp_path / "cli"), "--benchmark_filename", "[train, valid, test]"]
    )
    assert code == 0
    (run_dir,) = (tmp_path / "cli").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert (
        "the split is given by the files parted.train.inter, parted.valid.inter, parted.test.inter"
        in (run_dir / "run.log").read_text()
    )
    values = {
        "epochs": 1,
        "topk": [1, 2],
        "valid_metric": "Recall@2",
        "show_progress": False,
        "load_col": None,
        "data_path": str(tmp_path),
        "checkpoint_dir": str(tmp_path / "api"),
        "benchmark_filename": PARTS,
    }
    result = run("BPR", "parted", config_dict=values, verbose=False, cmd_args={})
    assert metrics["test_result"] == result["test_result"] and set(result["test_result"]) >= {"recall@1", "ndcg@2"}


def test_evaluate_predictions_on_the_given_split(tmp_path, capsys):
    write_parts(tmp_path, "parted", {"train": TRAIN, "valid": VALID, "test": TEST})
    predictions = tmp_path / "p.csv"
    # u2's i1 and u3's i2 are training items, masked: i4 (a hit) and i9 (a miss) move up. Test positives: u1 {i4},
    # u2 {i4, i3}, u3 {i3}, u9 {i9}: recall@1 = (1 + 1/2 + 0 + 1) / 4.
    rows = [("u1", "i4", 1), ("u2", "i1", 1), ("u2", "i4", 2), ("u3", "i2", 1), ("u3", "i9", 2), ("u9", "i9", 1)]
    predictions.write_text("user_id,item_id,rank\n" + "".join(f"{u},{i},{r}\n" for u, i, r in rows))
    args = ["evaluate", "--predictions", str(predictions), "--dataset", "parted", "--data_path", str(tmp_path)]
    args += ["--benchmark_filename", "[train, valid, test]", "--load_col", "~", "--topk", "[1]", "--quiet"]
    assert main([*args, "--metrics", "[Recall]", "--valid_metric", "Recall@1"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("recall@1 "))
    assert row.split() == ["recall@1", "0.6250"]
