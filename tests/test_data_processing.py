"""RecBole's data-processing keys, each on a small file in tests/data with a hand-computed result."""

import logging

import pytest

from conftest import ROOT
from recforge import Config, create_dataset
from recforge.errors import ConfigError, DataError

DATA = ROOT / "tests" / "data"


def load(case, **config):
    return create_dataset(Config("Pop", case, config_dict={"data_path": str(DATA), "data_cache": False, **config}))


def rows(ds, *fields):
    columns = []
    for field in fields:
        values = ds.inter_feat[field]
        columns.append(ds.id2token(field, values).tolist() if field in ds.field2id_token else values.tolist())
    return sorted(zip(*columns, strict=True))


ALL_INTER = {"inter": ["user_id", "item_id", "rating", "timestamp"]}


def test_rm_dup_inter_by_time_and_by_file_order():
    first = load("rm_dup", load_col=ALL_INTER, rm_dup_inter="first")
    last = load("rm_dup", load_col=ALL_INTER, rm_dup_inter="last")
    assert rows(first, "user_id", "item_id", "rating") == [("u1", "i1", 1.0), ("u1", "i2", 2.0), ("u2", "i1", 4.0)]
    assert rows(last, "user_id", "item_id", "rating") == [("u1", "i1", 5.0), ("u1", "i2", 2.0), ("u2", "i1", 2.0)]
    no_time = {"inter": ["user_id", "item_id", "rating"]}
    assert rows(load("rm_dup", load_col=no_time, rm_dup_inter="first"), "user_id", "item_id", "rating")[0] == (
        "u1",
        "i1",
        3.0,
    )  # file order when there is no time column


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            {"val_interval": {"rating": "[3,inf)"}},
            {("u1", "i2"), ("u2", "i1"), ("u2", "i3"), ("u3", "i3"), ("u4", "i1")},
        ),
        ({"val_interval": {"rating": "(0,2];[5,5]"}}, {("u1", "i1"), ("u2", "i1"), ("u3", "i2")}),
        (
            {"val_interval": {"gender": ["F"]}, "load_col": {**ALL_INTER, "user": True}},
            {("u1", "i1"), ("u1", "i2"), ("u3", "i2"), ("u3", "i3")},
        ),
        (
            {"val_interval": {"age": "[25,inf)"}, "load_col": {**ALL_INTER, "user": True}},
            {("u2", "i1"), ("u2", "i3"), ("u3", "i2"), ("u3", "i3")},
        ),
        (
            {"load_col": {**ALL_INTER, "user": True}},  # u4 has no .user row
            {("u1", "i1"), ("u1", "i2"), ("u2", "i1"), ("u2", "i3"), ("u3", "i2"), ("u3", "i3")},
        ),
    ],
)
def test_value_filters(config, expected):
    ds = load("values", **{"load_col": ALL_INTER, **config})
    assert set(rows(ds, "user_id", "item_id")) == expected


def test_filtered_feature_rows_get_no_ids():
    ds = load("values", load_col={**ALL_INTER, "user": True}, val_interval={"gender": ["F"]})
    assert list(ds.field2id_token["user_id"]) == ["[PAD]", "u1", "u3"]
    assert ds.user_feat["age"].tolist() == [30.0, 20.0, 40.0]  # padding row: the mean


def test_filter_inter_by_user_or_item_off_keeps_unknown_users():
    ds = load("values", load_col={**ALL_INTER, "user": True}, filter_inter_by_user_or_item=False)
    assert ds.inter_num == 7
    u4 = ds.token2id("user_id", "u4")
    assert ds.user_feat["age"][u4] == 30.0  # missing feature: the column mean of u1, u2, u3


def test_inter_num_filter_with_a_user_file(caplog):
    caplog.set_level(logging.INFO, logger="recforge")
    both = load(
        "kcore",
        load_col={"inter": ["user_id", "item_id"], "user": True},
        user_inter_num_interval="[2,inf)",
        item_inter_num_interval="[2,inf)",
    )
    assert rows(both, "user_id", "item_id") == [("u1", "i1"), ("u1", "i1")]
    assert list(both.field2id_token["user_id"]) == ["[PAD]", "u1"]
    assert "filtering removed 5 from .inter, 3 from .user" in caplog.text
    # u9 is only in the .user file: 0 interactions lies outside [1,inf) but inside [0,inf) / no interval.
    at_least_one = load(
        "kcore", load_col={"inter": ["user_id", "item_id"], "user": True}, user_inter_num_interval="[1,inf)"
    )
    assert list(at_least_one.field2id_token["user_id"]) == ["[PAD]", "u1", "u2", "u3"]
    unfiltered = load("kcore", load_col={"inter": ["user_id", "item_id"], "user": True})
    assert list(unfiltered.field2id_token["user_id"]) == ["[PAD]", "u1", "u2", "u3", "u9"]


def test_features_of_all_four_types(caplog):
    ds = load("features", load_col=None)
    assert "1 repeated item_id ids; the first row of each is used" in caplog.text
    assert list(ds.field2id_token["item_id"]) == ["[PAD]", "i2", "i1", "i3", "i4"]
    item = ds.item_feat
    assert list(ds.id2token("brand", item["brand"])) == ["[PAD]", "[PAD]", "b1", "b2", "b1"]
    mean = (10 + 30 + 40) / 3
    assert item["price"].tolist() == pytest.approx([mean, mean, 10, 30, 40])
    tags, vec = item["tags"], item["vec"]
    tag_rows = [ds.id2token("tags", tags.values[tags.offsets[i] : tags.offsets[i + 1]]).tolist() for i in range(5)]
    assert tag_rows == [[], [], ["x", "y"], ["y", "z"], ["x"]]
    assert vec.padded().tolist() == [[0, 0, 0], [3, 0, 0], [1, 2, 0], [4, 5, 6], [0, 0, 0]]
    assert list(ds.field2id_token["user_id"]) == ["[PAD]", "u1", "u2"]
    assert ds.user_feat["age"].tolist() == [25.0, 20.0, 30.0]
    assert list(ds.id2token("city", ds.user_feat["city"])) == ["[PAD]", "c1", "c2"]


def test_preload_weight_and_normalization():
    ds = load("features", load_col=None, preload_weight={"item_id": "vec"}, normalize_field=["price"])
    assert ds.get_preload_weight("item_id").tolist() == [[0, 0, 0], [3, 0, 0], [1, 2, 0], [4, 5, 6], [0, 0, 0]]
    mean = (10 + 30 + 40) / 3
    assert ds.item_feat["price"].tolist() == pytest.approx([(mean - 10) / 30, (mean - 10) / 30, 0, 2 / 3, 1])
    assert ds.inter_feat["rating"].tolist() == [4.0, 5.0, 3.0]  # not in normalize_field
    everything = load("features", load_col=None, normalize_all=True)
    assert everything.inter_feat["rating"].tolist() == [0.5, 1.0, 0.0]
    assert everything.item_feat["vec"].values.tolist() == pytest.approx([0.4, 0, 0.2, 0.6, 0.8, 1.0])  # ids 1, 2, 3
    with pytest.raises(KeyError, match="not in preload_weight"):
        ds.get_preload_weight("user_id")


def test_alias_fields_share_the_user_vocabulary():
    ds = load("alias", load_col={"inter": ["user_id", "item_id", "friend_id"]}, alias_of_user_id=["friend_id"])
    assert list(ds.field2id_token["user_id"]) == ["[PAD]", "u1", "u2", "u3", "u9"]
    assert ds.field2id_token["friend_id"] is ds.field2id_token["user_id"]
    assert ds.inter_feat["friend_id"].tolist() == [3, 4, 2]
    assert ds.user_num == 5
    alone = load("alias", load_col={"inter": ["user_id", "item_id", "friend_id"]})
    assert list(alone.field2id_token["friend_id"]) == ["[PAD]", "u3", "u9", "u2"]


def test_unused_col_orders_the_split_then_disappears(tiny_path):
    ds = create_dataset(
        Config(
            "Pop",
            "tiny",
            config_dict={
                "data_path": str(tiny_path),
                "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"]},
                "unused_col": {"inter": ["timestamp"]},
                "eval_args": {"order": "TO", "split": {"RS": [0.6, 0.2, 0.2]}},
            },
        )
    )
    train, valid, test = ds.build()
    assert "timestamp" in ds.inter_feat and "timestamp" not in test.inter_feat
    assert sorted(ds.id2token("item_id", test.inter_feat["item_id"])) == ["i3", "i4", "i5", "i6"]


def test_join_adds_features_to_a_batch():
    import torch

    ds = load("features", load_col=None)
    batch = ds.join({"user_id": torch.tensor([1, 2]), "item_id": torch.tensor([3, 2])})
    assert batch["age"].tolist() == [20.0, 30.0] and batch["price"].tolist() == [30.0, 10.0]
    assert batch["vec"].tolist() == [[4, 5, 6], [1, 2, 0]]


@pytest.mark.parametrize(
    ("config", "error", "message"),
    [
        (
            {"user_inter_num_interval": "[5,inf"},
            ConfigError,
            r"'user_inter_num_interval': '\[5,inf' is not an interval; write '\[low,high\]'",
        ),
        ({"item_inter_num_interval": "[a,b]"}, ConfigError, "has a bound that is not a number"),
        ({"user_inter_num_interval": "[5,1]"}, ConfigError, "is empty"),
        ({"val_interval": {"rating": "3"}}, ConfigError, r"'val_interval.rating': '3' is not an interval"),
        ({"val_interval": {"rating": 3}}, ConfigError, "is neither an interval"),
        ({"val_interval": {"ratng": "[1,2]"}}, ConfigError, "names 'ratng', which is not a loaded column"),
        ({"val_interval": {"user_id": "[1,2]"}}, ConfigError, "a token column takes a list of the tokens to keep"),
        ({"normalize_field": ["rating"], "normalize_all": True}, ConfigError, "cannot both be set"),
        ({"normalize_field": ["ratin"]}, ConfigError, "normalize_field' names 'ratin'"),
        ({"preload_weight": {"item_id": "nope"}}, ConfigError, "preload_weight' names 'nope'"),
        ({"threshold": {"rating": 3, "timestamp": 1}}, ConfigError, "threshold' takes one column"),
        ({"rm_dup_inter": "middle"}, ConfigError, "is not one of first, last"),
        # Keys that name fields are checked like load_col (an alias that names nothing was ignored before).
        ({"alias_of_user_id": ["nope"]}, ConfigError, "alias_of_user_id' names 'nope', which is not a loaded field"),
        ({"alias_of_item_id": ["rating"]}, ConfigError, "alias field 'rating' must be a token or token_seq column"),
        ({"unused_col": {"inter": ["ratin"]}}, ConfigError, "unused_col' names 'ratin' of the .inter file, which is"),
        ({"unload_col": {"inter": ["ratin"]}}, DataError, "column\\(s\\) 'ratin' named by unload_col are not in"),
    ],
)
def test_bad_processing_values(config, error, message):
    with pytest.raises(error, match=message):
        load("values", load_col=ALL_INTER, **config)


def test_every_row_filtered_out():
    with pytest.raises(DataError, match=r"no rows left in .*values.inter after filtering \(7 interactions read\)"):
        load("values", load_col={**ALL_INTER, "user": True}, val_interval={"gender": ["X"]})
