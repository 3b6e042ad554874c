"""RecBole's ``discretization``: float columns of numerical_features replaced by bucket ids, as RecBole's ``disc``
computes them (written out here), per table, after normalisation, cached with the data."""

import numpy as np
import pytest

from feature_data import feature_config, write_feature_data
from recforge import create_dataset
from recforge.data.columns import SeqColumn
from recforge.errors import ConfigError

NUMERICAL = ["hour", "age", "price", "vector"]
BUCKETS = {
    "age": {"method": "ED", "bucket": 4},
    "price": {"method": "LD"},
    "vector": {"method": "ED", "bucket": 3},
    "hour": {"method": "LD"},
}


def recbole_disc(arr: np.ndarray, method: str, bucket: int | None) -> tuple[np.ndarray, int]:
    """RecBole 1.2.1's Dataset._discretization.disc."""
    if method == "ED":
        lower, upper = min(arr), max(arr) + 1e-9
        if upper != lower:
            arr = np.floor((arr - lower) * bucket / (upper - lower) + 1)
        else:
            arr = np.ones_like(arr) * bucket
    else:
        mask = arr > 2
        x = np.floor(np.log(arr * mask + 1e-9) ** 2 + 1)
        x = np.where(mask, x, arr)
        _, arr = np.unique(x, return_inverse=True)
    return arr, int(max(arr) + 1)


def datasets(tmp_path, **extra):
    write_feature_data(tmp_path)
    plain = create_dataset(feature_config(tmp_path, "FM", numerical_features=NUMERICAL, **extra))
    config = feature_config(tmp_path, "FM", numerical_features=NUMERICAL, discretization=BUCKETS, **extra)
    return plain, create_dataset(config)


def column(ds, field):
    for table in (ds.inter_feat, ds.user_feat, ds.item_feat):
        if field in table:
            return table[field]
    raise KeyError(field)


@pytest.mark.parametrize("normalize_all", [None, True])
def test_buckets_are_recboles(tmp_path, normalize_all):
    plain, bucketed = datasets(tmp_path, normalize_all=normalize_all)
    for field, info in BUCKETS.items():
        before, after = column(plain, field), column(bucketed, field)
        values = before.values if isinstance(before, SeqColumn) else before  # the padding row (mean) included
        expected, count = recbole_disc(np.asarray(values), info["method"], info.get("bucket"))
        got = after.values if isinstance(after, SeqColumn) else after
        assert np.array_equal(got, expected.astype(np.float64)), field
        assert bucketed.field2bucketnum[field] == count, field
        if isinstance(before, SeqColumn):
            assert np.array_equal(after.offsets, before.offsets)
    assert bucketed.field2bucketnum["age"] == 5 and set(np.unique(bucketed.user_feat["age"])) <= {1.0, 2.0, 3.0, 4.0}
    assert plain.field2bucketnum == {}


def test_buckets_are_cached_with_the_data(tmp_path):
    write_feature_data(tmp_path)
    config = feature_config(tmp_path, "FM", numerical_features=NUMERICAL, discretization=BUCKETS, data_cache=True)
    built, cached = create_dataset(config), create_dataset(config)
    assert cached.cache_entry == built.cache_entry and cached.field2bucketnum == built.field2bucketnum
    assert np.array_equal(cached.user_feat["age"], built.user_feat["age"])
    other = {**BUCKETS, "age": {"method": "ED", "bucket": 2}}
    config = feature_config(tmp_path, "FM", numerical_features=NUMERICAL, discretization=other, data_cache=True)
    assert create_dataset(config).field2bucketnum["age"] == 3  # another processing key: another entry


def test_discretization_errors(tmp_path):
    write_feature_data(tmp_path)
    with pytest.raises(ConfigError, match="'discretization' names 'age', which is not in numerical_features"):
        create_dataset(feature_config(tmp_path, "FM", discretization={"age": {"method": "LD"}}))
    with pytest.raises(ConfigError, match="'discretization' names 'agee', which is not a loaded column"):
        create_dataset(
            feature_config(tmp_path, "FM", numerical_features=["age"], discretization={"agee": {"method": "LD"}})
        )
    with pytest.raises(ConfigError, match="method ED needs the number of buckets"):
        feature_config(tmp_path, "FM", discretization={"age": {"method": "ED"}})
    with pytest.raises(ConfigError, match="'gender', which is not in numerical_features"):  # a token column
        create_dataset(feature_config(tmp_path, "FM", discretization={"gender": {"method": "LD"}}))
