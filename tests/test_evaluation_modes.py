"""Evaluation modes (full, uniN / popN, labeled), value and beyond-accuracy metrics, pointwise training."""

import logging
import math

import numpy as np
import pytest
import torch
from torch import nn

from conftest import tiny_config
from recforge import Config, create_dataset, data_preparation, get_model_class, init_seed
from recforge.errors import ConfigError
from recforge.evaluation import metrics as M
from recforge.evaluation.evaluator import Evaluator
from recforge.models.base import GeneralRecommender, InputType
from recforge.trainer import Trainer

L = math.log


# -- value metrics by hand ------------------------------------------------------------------------


def test_auc_counts_ties_as_half():
    assert M.auc(np.array([0.9, 0.8, 0.8, 0.3]), np.array([1, 1, 0, 0])) == 3.5 / 4
    assert M.auc(np.array([0.1, 0.2]), np.array([1, 0])) == 0.0


def test_auc_without_negatives_is_nan_with_a_warning(caplog):
    assert math.isnan(M.auc(np.array([0.1, 0.2]), np.array([1, 1])))
    assert "AUC is undefined" in caplog.text


def test_grouped_auc_by_hand(caplog):
    scores = np.array([0.9, 0.1, 0.4, 0.6, 0.5, 0.7, 0.2])
    labels = np.array([1, 0, 1, 0, 1, 1, 1])
    users = np.array([1, 1, 2, 2, 2, 3, 3])  # user 3 has only positives: left out, with a warning
    assert M.grouped_auc(scores, labels, users) == pytest.approx((1 * 1.0 + 2 * 0.0) / 3)
    assert "1 user(s) without negatives were left out" in caplog.text
    ties = M.grouped_auc(np.array([0.5, 0.5, 0.5]), np.array([1, 0, 0]), np.array([4, 4, 4]))
    assert ties == 0.5


def test_logloss_mae_rmse_by_hand():
    assert M.log_loss(np.array([0.9, 0.2]), np.array([1.0, 0.0])) == pytest.approx((-L(0.9) - L(0.8)) / 2)
    assert M.log_loss(np.array([1.0]), np.array([0.0])) == pytest.approx(-L(1 - (1 - 1e-15)))  # clipped
    assert M.mae(np.array([3.0, 4.0, 5.0]), np.array([2.0, 4.0, 7.0])) == 1.0
    assert M.rmse(np.array([3.0, 4.0, 5.0]), np.array([2.0, 4.0, 7.0])) == pytest.approx(math.sqrt(5 / 3))


# -- beyond accuracy and GAUC from rankings ---------------------------------------------------------


def ranked(scores, positives, metrics, topk, counts=None, tail_ratio=0.1, history=None):
    evaluator = Evaluator(metrics, topk, tail_ratio)
    evaluator.set_item_counts(counts)
    rows = torch.tensor([r for r, items in enumerate(positives) for _ in items])
    items = torch.tensor([i for items in positives for i in items])
    evaluator.add_ranking(torch.tensor(scores, dtype=torch.float32), history, rows, items)
    return evaluator.result()


def test_beyond_accuracy_by_hand():
    # Top lists: user 0 -> [1, 2, 3], user 1 -> [1, 4, 2]; 5 items (ids 1..5) besides padding.
    scores = [[0, 9, 8, 7, 1, 0], [0, 9, 7, 1, 8, 0]]
    counts = np.array([0, 10, 5, 1, 0, 2])
    result = ranked(
        scores,
        [[1], [4]],
        ["ItemCoverage", "GiniIndex", "ShannonEntropy", "AveragePopularity", "TailPercentage"],
        [2, 3],
        counts=counts,
        tail_ratio=0.5,
    )
    assert result["itemcoverage@2"] == 3 / 5 and result["itemcoverage@3"] == 4 / 5
    assert result["giniindex@2"] == pytest.approx(((2 * 3 - 6) * 1 + (2 * 4 - 6) * 1 + (2 * 5 - 6) * 2) / (5 * 4))
    # RecBole 1.2.1's ShannonEntropy: p = appearances / (users * k) for each distinct recommended item, the sum of
    # -p ln p divided by the number of distinct recommended items. @2: item 1 twice, items 2 and 4 once, 4 slots.
    assert result["shannonentropy@2"] == pytest.approx(-(0.5 * L(0.5) + 0.25 * L(0.25) + 0.25 * L(0.25)) / 3)
    # @3: items 1 (twice), 2 (twice), 3, 4 in 6 slots.
    assert result["shannonentropy@3"] == pytest.approx(-(2 * (2 / 6) * L(2 / 6) + 2 * (1 / 6) * L(1 / 6)) / 4)
    assert result["averagepopularity@2"] == pytest.approx(((10 + 5) / 2 + (10 + 0) / 2) / 2)
    # Tail (half of the 4 items with training interactions, least popular first): items 3 and 5.
    assert result["tailpercentage@2"] == 0.0 and result["tailpercentage@3"] == pytest.approx((1 / 3 + 0) / 2)
    by_count = ranked(scores, [[1], [4]], ["TailPercentage"], [3], counts=counts, tail_ratio=2)
    assert by_count["tailpercentage@3"] == pytest.approx((1 / 3 + 0) / 2)  # count <= 2: items 3 and 5 again


def test_filler_items_count_in_no_metric():
    # 5 items; user 0 has seen items 3, 4 and 5 before, so only items 1 and 2 are candidates and the third slot of
    # its top 3 is a masked filler item. User 1 ranks 5, 4, 3.
    scores = [[0, 5, 4, 9, 8, 7], [0, 1, 2, 3, 4, 5]]
    history = (torch.tensor([0, 0, 0]), torch.tensor([3, 4, 5]))
    counts = np.array([0, 1, 2, 30, 40, 50])
    metrics = ["ItemCoverage", "GiniIndex", "ShannonEntropy", "AveragePopularity", "TailPercentage", "Recall"]
    result = ranked(scores, [[2], [1]], metrics, [3], counts=counts, tail_ratio=2, history=history)
    # Recommended: user 0 -> 1, 2 (and nothing else); user 1 -> 5, 4, 3. Every item once, 5 slots in all.
    assert result["itemcoverage@3"] == 5 / 5
    assert result["giniindex@3"] == pytest.approx(0.0)  # five items, each recommended once
    assert result["shannonentropy@3"] == pytest.approx(-(5 * 0.2 * L(0.2)) / 5)
    assert result["averagepopularity@3"] == pytest.approx(((1 + 2) / 2 + (50 + 40 + 30) / 3) / 2)
    assert result["tailpercentage@3"] == pytest.approx((2 / 2 + 0 / 3) / 2)  # tail: counts <= 2, items 1 and 2
    assert result["recall@3"] == pytest.approx((1 + 0) / 2)


def test_gauc_from_rankings_by_hand():
    scores = [[0, 0.9, 0.8, 0.7, 0.1, 0.1], [0, 0.5, 0.5, 0.5, 0.5, 0.5]]
    # User 0: positives 2 (0.8) and 5 (0.1) against 0.9, 0.7, 0.1: (2 + 0.5) / 6. User 1: all tied: 0.5.
    assert ranked(scores, [[2, 5], [1]], ["GAUC", "Recall"], [2])["gauc"] == pytest.approx((2 * 2.5 / 6 + 1 * 0.5) / 3)
    masked = ranked([scores[0]], [[2, 5]], ["GAUC"], [1], history=(torch.tensor([0]), torch.tensor([4])))
    assert masked["gauc"] == pytest.approx(1 / 4)  # item 4 masked: negatives 0.9 and 0.7 only


# -- config checks ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"eval_args": {"mode": "uni0"}}, r"'uni0' is not an evaluation mode; use full, labeled, uniN or popN"),
        ({"eval_args": {"mode": "sampled"}}, "is not an evaluation mode"),
        ({"metrics": ["AUC"], "valid_metric": "AUC@10", "eval_args": {"mode": "labeled"}}, "AUC has no cut-off"),
        ({"tail_ratio": 0}, "'tail_ratio': 0"),
    ],
)
def test_metrics_that_cannot_apply_are_rejected_when_read(overrides, message):
    with pytest.raises(ConfigError, match=message):
        Config("BPR", config_dict=overrides)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"metrics": ["NDCG"], "valid_metric": "NDCG@3", "eval_args": {"mode": "labeled"}},
            "metric NDCG ranks items, but eval_args.mode.valid is 'labeled'",
        ),
        ({"metrics": ["AUC"], "valid_metric": "AUC"}, "metric AUC compares predictions with labels"),
    ],
)
def test_metrics_that_cannot_apply_to_a_mode_are_refused_before_training(tiny_path, overrides, message):
    """As in RecBole, such a config builds loaders (scripts read them); training or evaluating on them is refused,
    before the first epoch and before anything is written."""
    from recforge.registry import get_model_class
    from recforge.trainer import Trainer

    config = tiny_config(tiny_path, "BPR", threshold={"rating": 3}, **overrides)
    train, valid, test = data_preparation(config, create_dataset(config))
    trainer = Trainer(config, get_model_class("BPR")(config, train.dataset))
    with pytest.raises(ConfigError, match=message):
        trainer.fit(train, valid)
    with pytest.raises(ConfigError, match=message.replace("valid", "test")):
        trainer.evaluate(test, load_best_model=False)
    assert not (tiny_path / "saved").exists()


def test_modes_parse_per_phase():
    config = Config("BPR", config_dict={"eval_args": {"mode": {"valid": "UNI100", "test": "pop50"}}})
    assert config["eval_args"]["mode"] == {"valid": "uni100", "test": "pop50"}


# -- sampled evaluation -----------------------------------------------------------------------------


@pytest.fixture
def wide_path(tmp_path):
    """30 users x 40 items, 8 random interactions each, ratings 1-5: room for sampled negatives."""
    from conftest import write_atomic

    rng = np.random.default_rng(3)
    rows = []
    for u in range(30):
        for t, i in enumerate(rng.choice(40, size=8, replace=False)):
            rows.append([f"u{u}", f"i{i}", int(rng.integers(1, 6)), t])
    write_atomic(tmp_path, "wide", "inter", ["user_id:token", "item_id:token", "rating:float", "timestamp:float"], rows)
    return tmp_path


def sampled(path, mode="uni2", seed=2020, model="Pop", dataset="tiny"):
    config = tiny_config(
        path, model, seed=seed, eval_args={"mode": mode, "order": "TO", "split": {"RS": [0.6, 0.2, 0.2]}}
    )
    if dataset != "tiny":
        config = Config(
            model,
            dataset,
            config_dict={
                **{
                    k: config[k]
                    for k in ("data_path", "load_col", "eval_args", "topk", "metrics", "valid_metric", "show_progress")
                },
                "seed": seed,
                "checkpoint_dir": str(path / "saved"),
            },
        )
    ds = create_dataset(config)
    return config, ds, data_preparation(config, ds)


def test_sampled_negatives_are_drawn_once_and_avoid_seen_items(wide_path):
    _, ds, (train, valid, test) = sampled(wide_path, "uni2", dataset="wide")
    first = [b[0]["item_id"].clone() for b in test]
    again = [b[0]["item_id"].clone() for b in test]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))  # same candidates every time
    _, _, (_, _, test_again) = sampled(wide_path, "uni2", dataset="wide")
    assert torch.equal(test.negatives, test_again.negatives)  # and in another run with the seed
    _, _, (_, _, other_seed) = sampled(wide_path, "uni2", seed=5, dataset="wide")
    assert not torch.equal(test.negatives, other_seed.negatives)
    assert test.negatives.shape == (30, 2)  # one positive per user (8 x 0.2 rounds to 1), 2 negatives each
    seen = {
        (u, i)
        for part in ds.build()
        for u, i in zip(part.inter_feat["user_id"].tolist(), part.inter_feat["item_id"].tolist(), strict=True)
    }
    users = torch.repeat_interleave(torch.arange(test.positives.n_users), test.positives.lengths)
    for user, row in zip(users.tolist(), test.negatives.tolist(), strict=True):
        assert all((user, item) not in seen and item != 0 for item in row)
    pairs, rows, pos_rows, pos_items = next(iter(test))
    assert rows.tolist() == [r for r in range(30) for _ in range(3)]
    assert pairs["item_id"][0::3].tolist() == pos_items.tolist()  # each user's positive comes first


def test_sampled_ranking_metrics_match_a_direct_count(wide_path):
    config, ds, (train, valid, test) = sampled(wide_path, "uni2", dataset="wide")
    trainer = Trainer(config, get_model_class("Pop")(config, train.dataset))
    trainer.fit(train, valid, verbose=False, saved=False)
    result = trainer.evaluate(test)
    counts = train.dataset.item_counts
    wins = []
    for user_row, positive in zip(test.negatives.tolist(), test.positives.items.tolist(), strict=True):
        candidates = sorted({positive, *user_row}, key=lambda item: (-counts[item], item))
        wins.append(candidates.index(positive) + 1)
    assert result["hit@1"] == np.mean([r == 1 for r in wins])
    assert result["mrr@3"] == pytest.approx(np.mean([1 / r for r in wins]))


def test_pop_sampling_for_evaluation(tiny_path):
    _, _, (train, valid, test) = sampled(tiny_path, "pop3")
    assert test.negatives.shape == (4, 3) and valid.mode == "sampled"


def test_valid_and_test_modes_differ(tiny_path):
    config = tiny_config(tiny_path, "Pop", eval_args={"mode": {"valid": "uni1", "test": "full"}, "order": "TO"})
    train, valid, test = data_preparation(config, create_dataset(config))
    assert valid.mode == "sampled" and test.mode == "full"


# -- labelled evaluation and pointwise training ---------------------------------------------------


class PointwiseMF(GeneralRecommender):
    """Matrix factorisation trained with binary cross-entropy on labelled rows; predict is a probability."""

    input_type = InputType.POINTWISE

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.user = nn.Embedding(self.n_users, 8)
        self.item = nn.Embedding(self.n_items, 8)
        self.batches = []

    def _logits(self, batch):
        return (self.user(batch[self.USER_ID]) * self.item(batch[self.ITEM_ID])).sum(-1)

    def calculate_loss(self, batch):
        self.batches.append({k: v.clone() for k, v in batch.items()})
        return nn.functional.binary_cross_entropy_with_logits(self._logits(batch), batch[self.config["LABEL_FIELD"]])

    def predict(self, batch):
        return torch.sigmoid(self._logits(batch))

    def full_sort_predict(self, batch):
        return self.user(batch[self.USER_ID]) @ self.item.weight.T


def test_pointwise_batches_with_sampled_negatives(tiny_path):
    # RecBole's batch size counts the rows with negatives: 15 // (1 + 2) = 5 positives, 15 rows.
    config = tiny_config(tiny_path, PointwiseMF, train_batch_size=15, epochs=1, train_neg_sample_args={"sample_num": 2})
    train, valid, _ = data_preparation(config, create_dataset(config))
    assert train.step == 5 and len(train) == 3  # 12 training interactions
    model = PointwiseMF(config, train.dataset)
    Trainer(config, model).fit(train, valid, verbose=False, saved=False)
    first = model.batches[0]
    assert len(first["user_id"]) == 15 and first["label"].tolist() == [1.0] * 5 + [0.0] * 10
    assert torch.equal(first["user_id"][:5], first["user_id"][5:10])  # the same users, negatives as items
    positives = set(
        zip(train.dataset.inter_feat["user_id"].tolist(), train.dataset.inter_feat["item_id"].tolist(), strict=True)
    )
    negatives = zip(first["user_id"][5:].tolist(), first["item_id"][5:].tolist(), strict=True)
    assert all(pair not in positives for pair in negatives)


def test_labelled_evaluation_matches_the_metric_functions(wide_path, caplog):
    config = Config(
        PointwiseMF,
        "wide",
        config_dict={
            "data_path": str(wide_path),
            "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"]},
            "threshold": {"rating": 3},
            "train_neg_sample_args": None,
            "epochs": 3,
            "show_progress": False,
            "metrics": ["AUC", "GAUC", "LogLoss", "MAE", "RMSE"],
            "valid_metric": "AUC",
            "eval_batch_size": 1000,
            "eval_args": {"mode": "labeled", "split": {"RS": [0.5, 0.0, 0.5]}},
        },
    )
    init_seed(0)
    train, valid, test = data_preparation(config, create_dataset(config))
    assert train.sampler is None and "label" in next(iter(train))
    model = PointwiseMF(config, train.dataset)
    trainer = Trainer(config, model)
    trainer.fit(train, valid, verbose=False, saved=False)
    result = trainer.evaluate(test, load_best_model=False)
    batch = next(iter(test))[0]
    with torch.no_grad():
        scores = model.predict(batch).numpy()
    labels, users = batch["label"].numpy(), batch["user_id"].numpy()
    assert result["auc"] == pytest.approx(M.auc(scores, labels))
    assert 0 < result["gauc"] < 1 and result["gauc"] == pytest.approx(M.grouped_auc(scores, labels, users))
    assert result["logloss"] == pytest.approx(M.log_loss(scores, labels))
    assert result["mae"] == pytest.approx(M.mae(scores, labels)) and result["rmse"] == pytest.approx(
        M.rmse(scores, labels)
    )


def test_labeled_mode_needs_labels_to_score(tiny_path):
    """As in RecBole, labelled loaders without labels can be built and read (scripts that only read batches); scoring
    them is refused."""
    from recforge.registry import get_model_class
    from recforge.trainer.scoring import score_loader

    config = tiny_config(tiny_path, "Pop", metrics=["AUC"], valid_metric="AUC", eval_args={"mode": "labeled"})
    train, valid, _ = data_preparation(config, create_dataset(config))
    assert [len(batch[0]) for batch in valid] == [4]
    model = get_model_class("Pop")(config, train.dataset)
    with pytest.raises(ConfigError, match="eval_args.mode labeled scores labelled rows, but the split has no 'label'"):
        score_loader(model, valid, Evaluator.from_config(config), torch.device("cpu"), "label")


def test_every_metric_in_one_full_run(tiny_path, caplog):
    caplog.set_level(logging.WARNING, logger="recforge")
    metrics = [
        "Recall",
        "MRR",
        "NDCG",
        "Hit",
        "Precision",
        "MAP",
        "ItemCoverage",
        "AveragePopularity",
        "GiniIndex",
        "ShannonEntropy",
        "TailPercentage",
        "GAUC",
    ]
    config = tiny_config(tiny_path, "Pop", metrics=metrics, valid_metric="NDCG@3")
    train, valid, test = data_preparation(config, create_dataset(config))
    trainer = Trainer(config, get_model_class("Pop")(config, train.dataset))
    trainer.fit(train, valid, verbose=False, saved=False)
    result = trainer.evaluate(test)
    assert len(result) == 11 * 3 + 1
    assert result["recall@1"] == 0.75 and result["itemcoverage@1"] == 3 / 6  # Pop: i5, i4, i3 at rank 1
    # GAUC by counting pairs: per user, (positive, candidate non-positive) pairs ranked right, ties counting half,
    # over all such pairs; users weighted by their positives.
    weighted, weights = 0.0, 0
    for batch, (history_rows, history_items), positive_rows, positive_items in test:
        scores = trainer.model.full_sort_predict(batch).double()
        for row in range(len(batch)):
            masked = {0} | {int(i) for r, i in zip(history_rows, history_items, strict=True) if r == row}
            positives = {int(i) for r, i in zip(positive_rows, positive_items, strict=True) if r == row}
            negatives = [j for j in range(scores.shape[1]) if j not in masked | positives]
            pairs = [(scores[row, p] > scores[row, n]) + 0.5 * (scores[row, p] == scores[row, n]) for p in positives
                     for n in negatives]  # fmt: skip
            weighted += len(positives) * float(sum(pairs)) / len(pairs)
            weights += len(positives)
    assert result["gauc"] == pytest.approx(weighted / weights)
