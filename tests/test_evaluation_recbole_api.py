"""RecBole's ``recbole.evaluator`` API (``recforge.evaluator``): hand-computed values through ``metrics_dict``, and
``Collector`` + ``Evaluator`` giving exactly recforge's own evaluation (``recforge.evaluation.Evaluator``)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from conftest import tiny_config
from recforge import create_dataset, data_preparation
from recforge.evaluation import METRICS
from recforge.evaluation.evaluator import Evaluator as RecforgeEvaluator
from recforge.evaluator import Collector, DataStruct, Evaluator, EvaluatorType, metrics_dict
from recforge.evaluator.register import metric_information, metric_types, smaller_metrics

LIST_METRICS = ["Recall", "MRR", "NDCG", "Hit", "Precision", "MAP", "GAUC"]
BEYOND_METRICS = ["ItemCoverage", "AveragePopularity", "GiniIndex", "ShannonEntropy", "TailPercentage"]
VALUE_METRICS = ["AUC", "LogLoss", "MAE", "RMSE"]
PLAIN_CONFIG = {"metric_decimal_place": 4, "topk": [1, 2, 3], "tail_ratio": 0.5}


def test_tables_list_recforges_metrics():
    assert set(metrics_dict) == set(METRICS)
    assert metric_information["ndcg"] == ["rec.topk"]
    assert metric_information["itemcoverage"] == ["rec.items", "data.num_items"]
    assert metric_types["auc"] is EvaluatorType.VALUE and metric_types["gauc"] is EvaluatorType.RANKING
    assert set(smaller_metrics) == {"mae", "rmse", "logloss", "averagepopularity", "giniindex"}


def test_hand_computed_values(one_thread):
    ndcg = metrics_dict["ndcg"](PLAIN_CONFIG).metric_info(np.array([[0, 1, 1]]), np.array([2]))
    idcg = 1 + 1 / math.log2(3)
    assert ndcg[0].tolist() == pytest.approx([0.0, (1 / math.log2(3)) / idcg, (1 / math.log2(3) + 0.5) / idcg])
    # MAP@3 of hits at ranks 1 and 3 with 2 positives: (P@1 + P@3) / min(2, 3) = (1 + 2/3) / 2
    assert metrics_dict["map"](PLAIN_CONFIG).metric_info(np.array([[1, 0, 1]]), np.array([2]))[0].tolist() == (
        pytest.approx([1.0, 0.5, 5 / 6])
    )
    # Two positives beating 2 of 2, 1 of 2 negatives; then one positive beating 1 of 2: (2 * 3/4 + 1/2) / 3.
    gauc = metrics_dict["gauc"](PLAIN_CONFIG).metric_info(np.array([1 + 3, 2]), np.array([4, 3]), np.array([2, 1]))
    assert gauc == pytest.approx(2 / 3)
    # The positive at 0.3 ties with a negative: half a pair. (2 + 0.5 + 1) / 4 pairs.
    auc = metrics_dict["auc"](PLAIN_CONFIG).metric_info(np.array([0.9, 0.3, 0.3, 0.1]), np.array([1, 1, 0, 0]))
    assert auc == pytest.approx(0.875)
    tail = metrics_dict["tailpercentage"]({**PLAIN_CONFIG, "tail_ratio": 2})
    assert tail.get_tail(np.array([[1, 2, 3]]), {1: 0, 2: 2, 3: 5}).tolist() == [[1, 1, 0]]


def test_data_struct():
    data = DataStruct()
    data.update_tensor("rec.items", torch.tensor([[1, 2]]))
    data.update_tensor("rec.items", torch.tensor([[3, 4]]))
    data.set("data.num_items", 5)
    assert "rec.items" in data and "rec.score" not in data
    assert data.get("rec.items").tolist() == [[1, 2], [3, 4]] and data.get("data.num_items") == 5
    with pytest.raises(IndexError):
        data.get("rec.score")
    with pytest.raises(ValueError):
        data.update_tensor("data.num_items", torch.tensor([1]))


def test_collector_and_evaluator_give_recforges_ranking_results(tiny_path, one_thread):
    """Pop-like scores (training counts, so ties) on the tiny set, two users a batch: users have 2 candidates, so
    @3 has a filler slot. The collector gets scores masked as RecBole's trainer masks them; recforge's evaluator
    gets the raw scores and the history."""
    config = tiny_config(tiny_path, metrics=LIST_METRICS + BEYOND_METRICS, tail_ratio=0.5, eval_batch_size=2)
    train, _, test = data_preparation(config, create_dataset(config))
    popularity = torch.from_numpy(train.dataset.item_counts).double()
    own = RecforgeEvaluator.from_config(config)
    own.set_item_counts(test.item_counts)
    collector = Collector(config)
    collector.data_collect(train)
    for interaction, history, positive_rows, positive_items in test:
        scores = popularity.repeat(len(positive_rows), 1)
        own.add_ranking(scores.clone(), history, positive_rows, positive_items)
        scores[history] = -torch.inf
        collector.eval_batch_collect(scores, interaction, positive_rows, positive_items)
    result = Evaluator(config).evaluate(collector.get_data_struct())
    expected = own.result()
    assert result == expected
    assert list(result) == list(expected)
    # u1 ranks i5 and i6 (tied; lower id first) and its positive is i5; u2's positive i4 comes second. GAUC: one
    # positive and one negative each; u1's are tied (1/2), u2's positive is below (0).
    assert result["hit@1"] == 0.75 and result["mrr@3"] == 0.875 and result["gauc"] == (0.5 + 0 + 1 + 1) / 4
    assert result["itemcoverage@3"] == 4 / 6  # i3, i4, i5, i6 of the 6 real items
    assert "rec.topk" not in collector.data_struct and "data.num_items" in collector.data_struct


def test_collector_and_evaluator_give_recforges_value_results(one_thread):
    config = {
        **PLAIN_CONFIG,
        "metrics": VALUE_METRICS,
        "eval_args": {"mode": "labeled"},
        "device": "cpu",
        "eval_tie_break": "lowest_id",
        "LABEL_FIELD": "label",
    }
    scores = torch.tensor([0.9, 0.3, 0.3, 0.1, 0.6, 0.2])
    labels = torch.tensor([1.0, 1.0, 0.0, 0.0, 1.0, 0.0])
    own = RecforgeEvaluator(VALUE_METRICS, [1])
    collector = Collector(config)
    for rows in (slice(0, 4), slice(4, 6)):
        own.add_labelled(scores[rows], labels[rows], torch.zeros(len(scores[rows]), dtype=torch.long))
        collector.eval_batch_collect(scores[rows], {"label": labels[rows]}, None, None)
    result = Evaluator(config).evaluate(collector.get_data_struct())
    assert result == own.result()
    assert result["auc"] == pytest.approx((3 + 2.5 + 3) / 9)  # 0.3 ties with a negative: half a pair
    assert result["mae"] == pytest.approx((0.1 + 0.7 + 0.3 + 0.1 + 0.4 + 0.2) / 6)

    collector.eval_collect(scores, labels)  # models that predict all rows at once
    assert Evaluator(config).evaluate(collector.get_data_struct()) == own.result()


def test_collector_reads_recboles_dataset_counters():
    config = {**PLAIN_CONFIG, "metrics": ["TailPercentage"], "eval_args": {"mode": "full"}, "device": "cpu"}
    config |= {"eval_tie_break": "lowest_id", "ITEM_ID_FIELD": "item_id", "USER_ID_FIELD": "user_id"}
    dataset = SimpleNamespace(inter_feat={"item_id": np.array([1, 1, 3])}, num=lambda field: 5)
    collector = Collector(config)
    collector.data_collect(SimpleNamespace(dataset=dataset))
    assert collector.get_data_struct().get("data.count_items") == {1: 2, 3: 1}
