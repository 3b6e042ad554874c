"""Sequential data: RecBole's augmentation without copies, its time order, the cache, batches, transforms, the
sampler, the evaluation of examples and the config rules of sequential models."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from conftest import write_atomic
from recforge import Config, create_dataset, data_preparation
from recforge.data.columns import HistoryColumn
from recforge.data.split.sampler import TargetSampler
from recforge.data.transform import construct_transform
from recforge.errors import ConfigError, DataError
from recforge.registry import get_model_class, get_trainer
from recforge.utils import init_seed
from sequential_data import cycle_config, cycle_loaders, write_cycle


def seq_config(root, name="s", model="GRU4Rec", **extra):
    values = {"data_path": str(root), "load_col": None, "show_progress": False, "topk": [1], **extra}
    return Config(model, name, config_dict=values, cmd_args=[])


def lists(dataset):
    return dataset.inter_feat["item_id_list"].padded()


def test_every_interaction_but_the_first_is_an_example_with_its_history(tmp_path):
    rows = [["a", "x", 3], ["a", "y", 1], ["a", "z", 2], ["b", "y", 5], ["b", "x", 9], ["a", "w", 4]]
    write_atomic(tmp_path, "s", "inter", ["user_id:token", "item_id:token", "timestamp:float"], rows)
    ds = create_dataset(seq_config(tmp_path, MAX_ITEM_LIST_LENGTH=2, data_cache=False))
    token = ds.field2id_token["item_id"]
    history = [[token[i] for i in row if i] for row in lists(ds)]
    # a's items in time: y z x w -> examples z|y, x|y z, w|z x (two most recent); b: y x -> x|y
    assert [token[i] for i in ds.inter_feat["item_id"]] == ["z", "x", "w", "x"]
    assert history == [["y"], ["y", "z"], ["z", "x"], ["y"]]
    assert ds.inter_feat["item_length"].tolist() == [1, 2, 2, 1]
    assert ds.inter_feat["timestamp_list"].padded().tolist() == [[1, 0], [1, 2], [2, 3], [5, 0]]
    column = ds.inter_feat["item_id_list"]
    assert isinstance(column, HistoryColumn) and column.values.shape == (6,)  # windows, never [examples x L]
    assert column.windows is ds.inter_feat["timestamp_list"].windows


def test_times_are_ordered_as_float32_with_ties_in_file_order(tmp_path):
    """16777217 and 16777216 are the same float32: RecBole's stable sort keeps the file's order, so 'late' (in
    float64 the later one) stays first and 'early' is the user's last item, the test target."""
    rows = [["a", "first", 1], ["a", "late", 16777217], ["a", "early", 16777216]]
    write_atomic(tmp_path, "s", "inter", ["user_id:token", "item_id:token", "timestamp:float"], rows)
    ds = create_dataset(seq_config(tmp_path, data_cache=False))
    token = ds.field2id_token["item_id"]
    assert [token[i] for i in ds.inter_feat["item_id"]] == ["late", "early"]


def test_the_cache_holds_the_order_and_gives_the_same_examples(tmp_path):
    write_cycle(tmp_path)
    config = cycle_config(tmp_path, "GRU4Rec", data_cache=True)
    first = create_dataset(config)
    second = create_dataset(config)
    assert second.cache_entry == first.cache_entry and "sequence_order" in second.derived
    assert np.array_equal(lists(first), lists(second))
    assert np.array_equal(first.inter_feat["item_id"], second.inter_feat["item_id"])
    plain = create_dataset(Config("BPR", "cycle", config_dict={"data_path": str(tmp_path), "load_col": None}))
    assert plain.cache_entry != first.cache_entry and plain.inter_num == first.inter_num + first.user_num - 1


def test_batches_gather_the_histories_of_their_rows(tmp_path):
    write_cycle(tmp_path)
    train, _, _ = cycle_loaders(cycle_config(tmp_path, "GRU4Rec"))
    dense = lists(train.dataset)
    seen = 0
    for batch in train:
        ends = batch["history_end"].numpy()
        rows = np.searchsorted(train.dataset.inter_feat["item_id_list"].windows.ends, ends)  # ends are distinct
        assert np.array_equal(batch["item_id_list"].numpy(), dense[rows])
        seen += len(batch)
    assert seen == train.dataset.inter_num


def test_mask_transform_masks_right_aligns_and_samples_outside_the_row():
    config = {"ITEM_ID_FIELD": "item_id", "LIST_SUFFIX": "_list", "ITEM_LIST_LENGTH_FIELD": "item_length"}
    config |= {"MAX_ITEM_LIST_LENGTH": 5, "mask_ratio": 0.4, "ft_ratio": 0.0, "transform": "mask_itemseq", "seed": 3}
    transform = construct_transform(config)

    class Data:
        def num(self, field):
            return 10

    batch = {"item_id_list": torch.tensor([[1, 2, 3, 4, 5], [6, 7, 0, 0, 0]]), "item_length": torch.tensor([5, 2])}
    out = transform(Data(), dict(batch), torch.Generator().manual_seed(0))
    masked = out["Mask_item_id_list"]
    chosen = masked == 10
    assert (masked[~chosen] == batch["item_id_list"][~chosen]).all() and not chosen[1, 2:].any()
    for row in range(2):
        positions = torch.nonzero(chosen[row]).flatten()[-2:]  # mask_item_length int(0.4 * 5) = 2: the last two
        index, pos, neg = out["MASK_INDEX"][row], out["Pos_item_id"][row], out["Neg_item_id"][row]
        k = len(positions)
        assert index[2 - k :].tolist() == positions.tolist() and (index[: 2 - k] == 0).all()
        assert pos[2 - k :].tolist() == batch["item_id_list"][row, positions].tolist()
        assert all(int(n) not in batch["item_id_list"][row].tolist() and 1 <= n < 10 for n in neg[2 - k :])
    again = transform(Data(), dict(batch), torch.Generator().manual_seed(0))
    assert torch.equal(again["Mask_item_id_list"], masked)  # the generator decides every draw


def test_fine_tuning_batches_mask_the_last_item_only():
    config = {"ITEM_ID_FIELD": "item_id", "LIST_SUFFIX": "_list", "ITEM_LIST_LENGTH_FIELD": "item_length"}
    config |= {"MAX_ITEM_LIST_LENGTH": 5, "mask_ratio": 0.4, "ft_ratio": 1.0, "transform": "mask_itemseq"}

    class Data:
        def num(self, field):
            return 10

    batch = {"item_id_list": torch.tensor([[1, 2, 3, 0, 0]]), "item_length": torch.tensor([3])}
    out = construct_transform(config)(Data(), batch, torch.Generator().manual_seed(0))
    assert out["Mask_item_id_list"].tolist() == [[1, 2, 10, 0, 0]]
    assert out["Pos_item_id"].tolist() == [[0, 3]] and out["MASK_INDEX"].tolist() == [[0, 2]]


def test_crop_and_reorder_keep_a_window_of_the_history():
    config = {"ITEM_ID_FIELD": "item_id", "LIST_SUFFIX": "_list", "ITEM_LIST_LENGTH_FIELD": "item_length"}
    items = torch.tensor([[1, 2, 3, 4, 5, 0], [7, 8, 9, 0, 0, 0]])
    batch = {"item_id_list": items, "item_length": torch.tensor([5, 3])}
    crop = construct_transform({**config, "transform": "crop_itemseq", "eta": 0.6})(None, dict(batch))
    assert crop["Crop_item_id_listitem_length"].tolist() == [3, 1]
    for row, (size, length) in enumerate(((3, 5), (1, 3))):
        window = crop["Crop_item_id_list"][row, :size].tolist()
        history = items[row, :length].tolist()
        assert any(history[s : s + size] == window for s in range(length - size + 1))
        assert (crop["Crop_item_id_list"][row, size:] == 0).all()
    reorder = construct_transform({**config, "transform": "reorder_itemseq", "beta": 1.0})
    out = reorder(None, dict(batch), torch.Generator().manual_seed(1))["Reorder_item_id_list"]
    assert sorted(out[0, :5].tolist()) == [1, 2, 3, 4, 5] and out[0, 5] == 0
    inverse = construct_transform({**config, "transform": "inverse_itemseq"})(None, dict(batch))
    assert inverse["Inverse_item_id_list"].tolist() == [[0, 1, 2, 3, 4, 5], [0, 0, 0, 7, 8, 9]]


def test_unknown_transform_is_one_clear_error():
    with pytest.raises(ConfigError, match="config key 'transform': unknown transform 'shuffle'"):
        construct_transform({"transform": "shuffle"})


def test_target_sampler_never_draws_the_target():
    sampler = TargetSampler(4)
    targets = torch.tensor([1, 2, 3] * 200)
    negatives = sampler.sample(targets, 3, torch.Generator().manual_seed(0))
    assert negatives.shape == (600, 3) and (negatives != targets[:, None]).all()
    assert set(negatives.unique().tolist()) == {1, 2, 3}


def test_full_ranking_of_examples_by_hand(tmp_path):
    """Recall@1 / NDCG@1 per example: the target is the one positive; seen items are ranked unless
    mask_history_items leaves them out."""
    rows = [["a", "x", 1], ["a", "y", 2], ["a", "z", 3], ["b", "z", 1], ["b", "x", 2], ["b", "y", 3]]
    write_atomic(tmp_path, "s", "inter", ["user_id:token", "item_id:token", "timestamp:float"], rows)
    for mask, expected in ((False, 0.0), (True, 1.0)):
        config = seq_config(
            tmp_path,
            eval_args={"split": {"LS": "test_only"}, "order": "TO", "mode": "full"},
            mask_history_items=mask,
            metrics=["Recall"],
            data_cache=False,
        )
        train, _, test = data_preparation(config, create_dataset(config))
        token = list(test.dataset.field2id_token["item_id"])

        class LastItemFirst(torch.nn.Module):  # scores the history's last item highest, the target second
            n_items, ITEM_ID, USER_ID = len(token), "item_id", "user_id"

            def full_sort_predict(self, batch):
                scores = torch.zeros(len(batch), self.n_items)
                rows = torch.arange(len(batch))
                scores[rows, batch["item_id"]] = 1.0
                scores[rows, batch["item_id_list"][rows, batch["item_length"] - 1]] = 2.0
                return scores

        from recforge.evaluation.evaluator import Evaluator
        from recforge.trainer.scoring import score_loader

        result = score_loader(LastItemFirst(), test, Evaluator(["Recall"], [1]), torch.device("cpu"), "label")
        assert result["recall@1"] == expected


def test_sequential_metrics_do_not_depend_on_batch_sizes(tmp_path):
    write_cycle(tmp_path)
    results = []
    for size in (3, 50):
        config = cycle_config(tmp_path, "SASRec", eval_batch_size=size, epochs=1)
        train, _, test = cycle_loaders(config)
        init_seed(0)
        model = get_model_class("SASRec")(config, train.dataset)
        results.append(get_trainer(type(model))(config, model).evaluate(test, load_best_model=False))
    assert results[0] == results[1]


def test_sampled_ranking_ranks_the_target_against_drawn_items(tmp_path):
    write_cycle(tmp_path)
    config = cycle_config(
        tmp_path, "SASRec", eval_args={"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "uni5"}
    )
    _, _, test = cycle_loaders(config)
    pairs, rows, positive_rows, targets = next(iter(test))
    assert len(pairs) == 6 * len(targets) and rows.tolist() == torch.arange(len(targets)).repeat_interleave(6).tolist()
    candidates = pairs["item_id"].view(-1, 6)
    assert torch.equal(candidates[:, 0], targets) and (candidates[:, 1:] != targets[:, None]).all()
    histories = pairs["item_id_list"].view(len(targets), 6, -1)
    assert (histories == histories[:, :1]).all()  # every candidate is scored with its example's history


def test_config_rules_of_sequential_models(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="recforge"):
        config = Config("SASRec", cmd_args=[])
    assert config["train_neg_sample_args"] is None and "loss_type CE trains without sampled negatives" in caplog.text
    assert config["eval_args"]["split"] == {"LS": "valid_and_test"} and config["eval_args"]["order"] == "TO"
    with pytest.raises(ConfigError, match="config key 'train_neg_sample_args' \\(config_dict\\) asks for sampled"):
        Config("SASRec", config_dict={"train_neg_sample_args": {"distribution": "popularity"}}, cmd_args=[])
    bpr = Config("SASRec", config_dict={"loss_type": "BPR"}, cmd_args=[])
    assert bpr["train_neg_sample_args"]["distribution"] == "uniform"


def test_order_and_negatives_are_checked_before_training(tmp_path):
    """As in RecBole, a config naming another order or BPR without negatives loads; the split refuses the order,
    the trainer a pairwise loss without negatives (before the first batch)."""
    write_cycle(tmp_path)
    ro = {"order": "RO", "split": {"RS": [0.8, 0.1, 0.1]}}
    with pytest.raises(ConfigError, match="order RO is not possible for sequential models"):
        create_dataset(cycle_config(tmp_path, "SASRec", eval_args=ro)).build()
    config = cycle_config(tmp_path, "SASRec", loss_type="BPR", train_neg_sample_args=None)
    train, valid, _ = cycle_loaders(config)
    model = get_model_class("SASRec")(config, train.dataset)
    with pytest.raises(ConfigError, match="SASRec is trained on pairs"):
        get_trainer(type(model))(config, model).fit(train, valid, verbose=False, saved=False)


def test_time_column_is_required(tmp_path):
    write_atomic(tmp_path, "s", "inter", ["user_id:token", "item_id:token"], [["a", "x"], ["a", "y"]])
    with pytest.raises(ConfigError, match="the time column 'timestamp' is not loaded"):
        create_dataset(seq_config(tmp_path, data_cache=False))


def test_benchmark_files_without_history_lists_are_refused(tmp_path):
    header = ["user_id:token", "item_id:token", "timestamp:float"]
    for part in ("train", "valid", "test"):
        write_atomic(tmp_path, "s", f"{part}.inter", header, [["a", "x", 1], ["a", "y", 2]])
    config = seq_config(tmp_path, benchmark_filename=["train", "valid", "test"], data_cache=False)
    with pytest.raises(DataError, match="token_seq column 'item_id_list'.*the file has none"):
        create_dataset(config)
