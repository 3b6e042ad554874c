import numpy as np
import pytest

from conftest import ML100K, TINY_INTER, needs_ml100k, tiny_config, write_atomic
from recforge import Config, create_dataset
from recforge.errors import ConfigError, DataError


def test_vocabularies_pad_zero_and_first_appearance_order(tiny_path):
    ds = create_dataset(tiny_config(tiny_path))
    assert list(ds.field2id_token["user_id"]) == ["[PAD]", "u1", "u2", "u3", "u4"]
    assert list(ds.field2id_token["item_id"]) == ["[PAD]", "i1", "i2", "i3", "i4", "i5", "i6"]
    assert ds.user_num == 5 and ds.item_num == 7 and ds.inter_num == 20
    assert ds.token2id("item_id", "i3") == 3
    assert ds.token2id("item_id", ["i6", "i1"]).tolist() == [6, 1]
    assert list(ds.id2token("user_id", [4, 1])) == ["u4", "u1"]
    with pytest.raises(KeyError, match="token 'i9' is not in field 'item_id'"):
        ds.token2id("item_id", "i9")
    uids = ds.inter_feat["user_id"]
    assert uids.dtype == np.int64 and uids[:5].tolist() == [1] * 5


def test_inter_matrix(tiny_path):
    ds = create_dataset(tiny_config(tiny_path))
    matrix = ds.inter_matrix(form="csr")
    assert matrix.shape == (5, 7) and matrix.nnz == 20
    assert matrix[1].indices.tolist() == [1, 2, 3, 4, 5]
    ratings = ds.inter_matrix(form="coo", value_field="rating").tocsr()
    assert ratings[2, 6] == 3.0


def test_item_features_indexed_by_id(tiny_path):
    ds = create_dataset(tiny_config(tiny_path, load_col={"inter": ["user_id", "item_id"], "item": True}))
    # i7 appears only in the .item file: it gets the next id, after the items of the interactions.
    assert list(ds.field2id_token["item_id"]) == ["[PAD]", "i1", "i2", "i3", "i4", "i5", "i6", "i7"]
    feat = ds.item_feat
    assert feat["item_id"].tolist() == list(range(8))
    year = feat["year"]
    mean = np.mean([1990, 1991, 1993, 1994, 1995, 1996])
    assert year[1] == 1990 and year[7] == 1996
    assert year[3] == pytest.approx(mean)  # an empty value is filled with the column mean (RecBole)
    assert year[0] == pytest.approx(mean)  # so is the padding row
    genre = feat["genre"]
    tokens = ds.field2id_token["genre"]
    assert [list(tokens[genre.values[genre.offsets[i] : genre.offsets[i + 1]]]) for i in (0, 1, 3, 4)] == [
        [],
        ["a", "b"],
        [],
        ["c", "a"],
    ]


def test_rm_dup_inter_keeps_first_or_last_by_time(tmp_path):
    rows = [["u1", "i1", 5, 3], ["u1", "i1", 1, 1], ["u1", "i2", 2, 2], ["u2", "i1", 4, 4]]
    write_atomic(tmp_path, "dup", "inter", ["user_id:token", "item_id:token", "rating:float", "timestamp:float"], rows)
    base = {"data_path": str(tmp_path), "load_col": None}
    first = create_dataset(Config("Pop", "dup", config_dict={**base, "rm_dup_inter": "first"}))
    last = create_dataset(Config("Pop", "dup", config_dict={**base, "rm_dup_inter": "last"}))
    assert first.inter_num == 3 and last.inter_num == 3
    pick = lambda ds: sorted(
        zip(
            ds.inter_feat["user_id"].tolist(),
            ds.inter_feat["item_id"].tolist(),
            ds.inter_feat["rating"].tolist(),
            strict=True,
        )
    )
    assert (1, 1, 1.0) in pick(first) and (1, 1, 5.0) in pick(last)


def test_val_interval(tiny_path):
    ds = create_dataset(tiny_config(tiny_path, val_interval={"rating": "[3,inf)"}))
    assert sorted(set(ds.inter_feat["rating"].tolist())) == [3.0, 4.0, 5.0]
    assert ds.inter_num == 12
    with pytest.raises(ConfigError, match=r"'val_interval.rating': '3' is not an interval"):
        create_dataset(tiny_config(tiny_path, val_interval={"rating": "3"}))


def test_inter_num_filter_reaches_a_fixed_point(tmp_path):
    # Users and items need >= 2 interactions. Round 1 bans i3 and i4 (one each); round 2 then bans u2 and u3
    # (one left each); round 3 bans i2 (one left); round 4 finds nothing: only u1's two i1 remain.
    rows = [["u1", "i1"], ["u1", "i2"], ["u2", "i2"], ["u2", "i3"], ["u3", "i1"], ["u3", "i4"], ["u1", "i1"]]
    write_atomic(tmp_path, "core", "inter", ["user_id:token", "item_id:token"], rows)
    config = Config(
        "Pop",
        "core",
        config_dict={
            "data_path": str(tmp_path),
            "user_inter_num_interval": "[2,inf)",
            "item_inter_num_interval": "[2,inf)",
        },
    )
    ds = create_dataset(config)
    users = ds.id2token("user_id", ds.inter_feat["user_id"]).tolist()
    items = ds.id2token("item_id", ds.inter_feat["item_id"]).tolist()
    assert list(zip(users, items, strict=True)) == [("u1", "i1"), ("u1", "i1")]
    assert list(ds.field2id_token["user_id"]) == ["[PAD]", "u1"]
    assert list(ds.field2id_token["item_id"]) == ["[PAD]", "i1"]


def test_threshold_makes_labels_and_drops_the_column(tiny_path):
    ds = create_dataset(tiny_config(tiny_path, threshold={"rating": 4}))
    assert "rating" not in ds.inter_feat
    assert ds.inter_feat["label"][:5].tolist() == [1.0, 1.0, 0.0, 0.0, 0.0]


def test_filter_inter_by_user_or_item(tmp_path):
    write_atomic(tmp_path, "f", "inter", ["user_id:token", "item_id:token"], [["u1", "i1"], ["u1", "i9"], ["u2", "i2"]])
    write_atomic(tmp_path, "f", "item", ["item_id:token", "c:token"], [["i1", "x"], ["i2", "y"]])
    config = Config("Pop", "f", config_dict={"data_path": str(tmp_path), "load_col": None})
    assert create_dataset(config).inter_num == 2
    config = Config(
        "Pop", "f", config_dict={"data_path": str(tmp_path), "load_col": None, "filter_inter_by_user_or_item": False}
    )
    assert create_dataset(config).inter_num == 3


def test_empty_after_filtering(tiny_path):
    with pytest.raises(DataError, match=r"no rows left in .*tiny.inter after filtering \(20 interactions read\)"):
        create_dataset(tiny_config(tiny_path, val_interval={"rating": "[10,inf)"}))


def test_missing_folder_and_files(tmp_path, tiny_path):
    with pytest.raises(DataError, match=r"data set 'nope' not found: no folder .*nope and no bundled data set"):
        create_dataset(Config("Pop", "nope", config_dict={"data_path": str(tmp_path)}))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty.inter: file not found"):
        create_dataset(Config("Pop", "empty", config_dict={"data_path": str(tmp_path)}))
    with pytest.raises(DataError, match=r"tiny.user: file not found, but load_col.user asks for it"):
        create_dataset(tiny_config(tiny_path, load_col={"inter": ["user_id", "item_id"], "user": True}))
    with pytest.raises(DataError, match=r"no column 'uid' \(USER_ID_FIELD\)"):
        create_dataset(tiny_config(tiny_path, USER_ID_FIELD="uid", load_col=None))


def test_ml100k_is_not_found_without_data_path(tmp_path):
    with pytest.raises(DataError, match="ml-100k cannot be bundled"):
        create_dataset(Config("Pop", "ml-100k", config_dict={"data_path": str(tmp_path)}))


def test_bundled_dataset():
    ds = create_dataset(Config("Pop", "ml-latest-small", config_dict={"data_path": "/nonexistent"}))
    assert (ds.user_num - 1, ds.item_num - 1, ds.inter_num) == (610, 9724, 100836)
    assert set(ds.inter_feat) == {"user_id", "item_id", "rating", "timestamp"}


@needs_ml100k
def test_ml100k_from_shared():
    ds = create_dataset(Config("Pop", "ml-100k", config_dict={"data_path": str(ML100K.parent)}))
    assert (ds.user_num, ds.item_num, ds.inter_num) == (944, 1683, 100000)


def test_tiny_fixture_matches_its_description():
    assert len(TINY_INTER) == 20
