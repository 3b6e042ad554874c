import numpy as np
import pytest
import torch

from conftest import tiny_args, tiny_config
from recforge import create_dataset, data_preparation
from recforge.data.split.history import UserHistory
from recforge.data.split.sampler import NegativeSampler
from recforge.errors import ConfigError, DataError
from recforge.trainer import Trainer


def history_fixture():
    # user 1: items 1, 2, 3 ; user 2: item 4 ; user 3: every item but 5
    users = np.array([1, 1, 1, 2, 3, 3, 3, 3, 1])
    items = np.array([1, 2, 3, 4, 1, 2, 3, 4, 2])
    return UserHistory.from_pairs(users, items, n_users=4, n_items=6)


def test_user_history_csr_and_membership():
    history = history_fixture()
    assert history.indptr.tolist() == [0, 0, 3, 4, 8]
    assert history.items.tolist() == [1, 2, 3, 4, 1, 2, 3, 4]
    assert history.contains(torch.tensor([1, 1, 2, 3]), torch.tensor([3, 4, 4, 5])).tolist() == [
        True,
        False,
        True,
        False,
    ]
    rows, items = history.gather(torch.tensor([2, 0, 1]))
    assert rows.tolist() == [0, 2, 2, 2] and items.tolist() == [4, 1, 2, 3]


@pytest.mark.parametrize("num", [1, 4])
def test_negatives_avoid_history_and_padding(num):
    history = history_fixture()
    sampler = NegativeSampler(history)
    users = torch.tensor([1, 2, 3] * 200)
    negatives = sampler.sample(users, num, torch.Generator().manual_seed(0))
    assert negatives.shape == (600, num)
    assert (negatives >= 1).all() and (negatives <= 5).all()
    assert not history.contains(users.unsqueeze(1).expand(-1, num), negatives).any()
    assert (negatives[users == 3] == 5).all()  # the only item user 3 has not seen
    again = sampler.sample(users, num, torch.Generator().manual_seed(0))
    assert torch.equal(negatives, again)


def test_user_with_every_item_has_no_negative():
    history = UserHistory.from_pairs(np.array([1, 1, 1]), np.array([1, 2, 3]), n_users=2, n_items=4)
    with pytest.raises(DataError, match=r"1 user\(s\) \(ids \[1\]\) interacted with all 3 candidate items"):
        NegativeSampler(history).sample(torch.tensor([1]), 1, torch.Generator())


def test_popularity_negatives_follow_counts():
    history = UserHistory.from_pairs(np.array([1]), np.array([1]), n_users=3, n_items=5)
    counts = np.array([0, 5, 3, 1, 0])  # item 4 never seen: never drawn; item 1 is user 1's positive
    sampler = NegativeSampler(history, "popularity", counts, alpha=1.0)
    draws = sampler.sample(torch.full((40000,), 2), 1, torch.Generator().manual_seed(1)).flatten()
    freq = torch.bincount(draws, minlength=5).double() / len(draws)
    assert freq[0] == 0 and freq[4] == 0
    assert freq[1:4].tolist() == pytest.approx([5 / 9, 3 / 9, 1 / 9], abs=0.01)
    drawn_for_1 = sampler.sample(torch.full((1000,), 1), 1, torch.Generator()).flatten()
    assert not (drawn_for_1 == 1).any()


def test_train_loader_epochs(tiny_path):
    config = tiny_config(tiny_path, "BPR", train_batch_size=5)
    train, valid, test = data_preparation(config, create_dataset(config))
    assert len(train) == 3
    epoch1 = list(train)
    epoch2 = list(train)
    assert [len(b) for b in epoch1] == [5, 5, 2]
    rows1 = sorted(
        zip(
            torch.cat([b["user_id"] for b in epoch1]).tolist(),
            torch.cat([b["item_id"] for b in epoch1]).tolist(),
            strict=True,
        )
    )
    rows2 = sorted(
        zip(
            torch.cat([b["user_id"] for b in epoch2]).tolist(),
            torch.cat([b["item_id"] for b in epoch2]).tolist(),
            strict=True,
        )
    )
    assert rows1 == rows2 and len(rows1) == 12  # every training interaction once per epoch
    assert not torch.equal(epoch1[0]["user_id"], epoch2[0]["user_id"]) or not torch.equal(
        epoch1[0]["item_id"], epoch2[0]["item_id"]
    )
    batch = epoch1[0]
    assert batch["neg_item_id"].shape == (5,)
    assert batch["rating"].dtype == torch.float32 and batch["user_id"].dtype == torch.int64
    # A second loader from the same seed replays the same epochs.
    train_again, _, _ = data_preparation(config, create_dataset(config))
    assert all(torch.equal(a["neg_item_id"], b["neg_item_id"]) for a, b in zip(epoch1, list(train_again), strict=True))


def test_several_negatives_are_one_tensor(tiny_path):
    config = tiny_config(tiny_path, "BPR", train_neg_sample_args={"sample_num": 3})
    train, _, _ = data_preparation(config, create_dataset(config))
    batch = next(iter(train))
    assert batch["neg_item_id"].shape == (12, 3)
    assert len(batch) == 12  # the positives are not repeated


def test_eval_loaders_mask_earlier_splits(tiny_path):
    config = tiny_config(tiny_path, "Pop", eval_batch_size=3)
    ds = create_dataset(config)
    train, valid, test = data_preparation(config, ds)
    assert len(valid) == 2 and valid.user_count == 4
    interaction, history, pos_rows, pos_items = next(iter(test))
    users = interaction["user_id"].tolist()
    assert users == [1, 2, 3]
    u1 = [ds.id2token("item_id", i) for r, i in zip(*history, strict=True) if r == 0]
    assert sorted(u1) == ["i1", "i2", "i3", "i4"]  # train + valid items of u1 are masked when testing
    _, valid_history, _, valid_items = next(iter(valid))
    u1_valid = [ds.id2token("item_id", i) for r, i in zip(*valid_history, strict=True) if r == 0]
    assert sorted(u1_valid) == ["i1", "i2", "i3"]  # only train items when validating
    assert ds.id2token("item_id", valid_items[0]) == "i4"


def test_pairwise_model_needs_negative_sampling(tiny_path, capsys):
    """RecBole's train_neg_sample_args: None gives loaders of positives only (scripts read them); training a pairwise
    model on them is refused in one line, before the run folder is made."""
    from recforge.cli import main
    from recforge.registry import get_model_class

    config = tiny_config(tiny_path, "BPR", train_neg_sample_args=None)
    train, valid, _ = data_preparation(config, create_dataset(config))
    assert "neg_item_id" not in next(iter(train)) and sum(len(batch) for batch in train) == train.dataset.inter_num
    trainer = Trainer(config, get_model_class("BPR")(config, train.dataset))
    with pytest.raises(ConfigError, match="BPR is trained on pairs"):
        trainer.fit(train, valid)
    assert not (tiny_path / "saved").exists()
    assert main([*tiny_args(tiny_path, "BPR"), "--train_neg_sample_args", "~"]) == 2
    assert "recforge: error: BPR is trained on pairs (positive, negative)" in capsys.readouterr().err


def test_topk_larger_than_catalogue(tiny_path):
    config = tiny_config(tiny_path, "Pop", topk=[10], valid_metric="Recall@10")
    with pytest.raises(ConfigError, match=r"'topk': 10 exceeds the number of items \(6\)"):
        data_preparation(config, create_dataset(config))


def test_history_union_and_minus_equal_set_operations():
    """Union and difference search the smaller side in the larger one; both orders, empty sides, overlaps."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        n_users, n_items = int(rng.integers(1, 30)), int(rng.integers(1, 30))

        a, b = (
            UserHistory.from_pairs(rng.integers(0, n_users, n), rng.integers(0, n_items, n), n_users, n_items)
            for n in rng.integers(0, 60, 2)
        )
        keys_a, keys_b = set(a.keys.tolist()), set(b.keys.tolist())
        for result, expected in ((a.union(b), keys_a | keys_b), (b.union(a), keys_a | keys_b)):
            reference = UserHistory._from_keys(np.array(sorted(expected), dtype=np.int64), n_users, n_items)
            assert result.keys.tolist() == sorted(expected)
            assert torch.equal(result.indptr, reference.indptr) and torch.equal(result.items, reference.items)
        assert a.minus(b).keys.tolist() == sorted(keys_a - keys_b)
        assert b.minus(a).keys.tolist() == sorted(keys_b - keys_a)
        assert a.union(b, a).keys.tolist() == sorted(keys_a | keys_b)


def test_the_presence_table_for_large_queries_gives_the_binary_search_answer(monkeypatch):
    """Large queries against large histories go through a hash table of the keys first; with the threshold at 1
    every query does, and the answers equal the plain binary search (the table has no false negatives)."""
    import recforge.data.split.history as history

    rng = np.random.default_rng(1)
    for _ in range(40):
        n_users, n_items = int(rng.integers(1, 300)), int(rng.integers(1, 300))
        n = int(rng.integers(1, 3000))
        users, items = rng.integers(0, n_users, n), rng.integers(0, n_items, n)
        known = UserHistory.from_pairs(users, items, n_users, n_items)
        query = torch.from_numpy(np.concatenate([users * n_items + items, rng.integers(0, n_users * n_items, 4000)]))
        monkeypatch.setattr(history, "PREFILTER_MIN", 1 << 20)
        plain = known.contains_keys(query)
        monkeypatch.setattr(history, "PREFILTER_MIN", 1)
        assert torch.equal(known.contains_keys(query), plain) and bool(plain[:n].all())
        assert known._prefilter is not None
