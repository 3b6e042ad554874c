import numpy as np
import pytest

from conftest import ML100K, needs_ml100k, tiny_config
from recforge import Config, create_dataset
from recforge.data.split.rules import leave_one_out_counts, ratio_counts, split_indices


def recbole_split_ids(tot, ratios):
    """RecBole 1.2.1's Dataset._calcu_split_ids, transcribed literally as the reference."""
    cnt = [int(ratios[i] * tot) for i in range(len(ratios))]
    cnt[0] = tot - sum(cnt[1:])
    for i in range(1, len(ratios)):
        if cnt[0] <= 1:
            break
        if 0 < ratios[-i] * tot < 1:
            cnt[-i] += 1
            cnt[0] -= 1
    return cnt


def recbole_leave_one_out(tot, leave_one_num):
    """RecBole's _split_index_by_leave_one_out for one group, as part sizes."""
    sizes = [0] * (leave_one_num + 1)
    legal = min(leave_one_num, tot - 1)
    sizes[0] = tot - legal
    for i in range(legal):
        sizes[-legal + i] += 1
    return sizes


@pytest.mark.parametrize("ratios", [[0.8, 0.1, 0.1], [0.6, 0.2, 0.2], [0.7, 0.0, 0.3], [0.5, 0.25, 0.25], [0.9, 0.1]])
def test_ratio_counts_match_recbole(ratios):
    totals = np.arange(0, 60)
    counts = ratio_counts(totals, ratios)
    for j, tot in enumerate(totals):
        assert counts[:, j].tolist() == recbole_split_ids(int(tot), ratios), tot


def test_leave_one_out_counts_match_recbole():
    totals = np.arange(0, 8)
    vt = leave_one_out_counts(totals, "valid_and_test")
    to = leave_one_out_counts(totals, "test_only")
    vo = leave_one_out_counts(totals, "valid_only")
    for j, tot in enumerate(totals.tolist()):
        expected = recbole_leave_one_out(tot, 2) if tot else [0, 0, 0]
        assert vt[:, j].tolist() == expected
        train, test = recbole_leave_one_out(tot, 1) if tot else [0, 0]
        assert to[:, j].tolist() == [train, 0, test]
        assert vo[:, j].tolist() == [train, test, 0]


def pairs(ds):
    users = ds.id2token("user_id", ds.inter_feat["user_id"]).tolist()
    items = ds.id2token("item_id", ds.inter_feat["item_id"]).tolist()
    return sorted(zip(users, items, strict=True))


def test_time_order_split_by_user(tiny_path):
    train, valid, test = create_dataset(tiny_config(tiny_path)).build()
    assert pairs(valid) == [("u1", "i4"), ("u2", "i3"), ("u3", "i6"), ("u4", "i5")]
    assert pairs(test) == [("u1", "i5"), ("u2", "i4"), ("u3", "i3"), ("u4", "i6")]
    assert train.inter_num == 12
    assert train.user_num == valid.user_num == 5  # vocabularies are shared by the parts


def test_leave_one_out_split(tiny_path):
    config = tiny_config(tiny_path, eval_args={"split": {"LS": "valid_and_test"}, "order": "TO"})
    train, valid, test = create_dataset(config).build()
    assert pairs(test) == [("u1", "i5"), ("u2", "i4"), ("u3", "i3"), ("u4", "i6")]
    assert pairs(valid) == [("u1", "i4"), ("u2", "i3"), ("u3", "i6"), ("u4", "i5")]
    config = tiny_config(tiny_path, eval_args={"split": {"LS": "test_only"}, "order": "TO"})
    train, valid, test = create_dataset(config).build()
    assert (train.inter_num, valid.inter_num, test.inter_num) == (16, 0, 4)


def test_global_split_without_grouping(tiny_path):
    config = tiny_config(tiny_path, eval_args={"split": {"RS": [0.5, 0.25, 0.25]}, "order": "TO", "group_by": None})
    train, valid, test = create_dataset(config).build()
    assert (train.inter_num, valid.inter_num, test.inter_num) == (10, 5, 5)
    # Sorted by time (5 timestamps, 4 rows each, ties in file order): rows 10-14 are valid, 15-19 test.
    assert sorted(valid.inter_feat["timestamp"].tolist()) == [3.0, 3.0, 4.0, 4.0, 4.0]
    assert sorted(test.inter_feat["timestamp"].tolist()) == [4.0, 5.0, 5.0, 5.0, 5.0]
    assert ("u4", "i5") in pairs(test)  # the last timestamp-4 row in file order
    assert ("u3", "i6") in pairs(valid)


def test_random_order_is_seeded(tiny_path):
    ds = create_dataset(tiny_config(tiny_path, eval_args={"order": "RO", "split": {"RS": [0.6, 0.2, 0.2]}}))
    again = create_dataset(tiny_config(tiny_path, eval_args={"order": "RO", "split": {"RS": [0.6, 0.2, 0.2]}}))
    other = create_dataset(tiny_config(tiny_path, seed=7, eval_args={"order": "RO", "split": {"RS": [0.6, 0.2, 0.2]}}))
    first = [p.tolist() for p in split_indices(ds)]
    assert first == [p.tolist() for p in split_indices(again)]
    assert first != [p.tolist() for p in split_indices(other)]
    assert sorted(np.concatenate(split_indices(ds)).tolist()) == list(range(20))


def test_order_to_needs_the_time_column(tiny_path):
    config = tiny_config(tiny_path, load_col={"inter": ["user_id", "item_id"]})
    with pytest.raises(Exception, match="eval_args.order TO needs the time column 'timestamp'"):
        create_dataset(config).build()


@needs_ml100k
def test_ml100k_split_sizes_match_recbole():
    config = Config("Pop", "ml-100k", config_dict={"data_path": str(ML100K.parent)})
    train, valid, test = create_dataset(config).build()
    assert (train.inter_num, valid.inter_num, test.inter_num) == (80808, 9596, 9596)
