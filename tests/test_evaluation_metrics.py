import math

import numpy as np
import pytest
import torch

from recforge.errors import TrainingError
from recforge.evaluation.evaluator import Evaluator
from recforge.evaluation.metrics import RANKING_METRICS
from recforge.evaluation.ranking import topk_items

L2 = math.log2


def values(name, hits, pos_len):
    return RANKING_METRICS[name](torch.tensor(hits, dtype=torch.bool), torch.tensor(pos_len)).numpy()


def test_hand_computed_single_user():
    # Three positives; the items at ranks 2 and 4 are hits.
    hits, pos_len = [[0, 1, 0, 1, 0]], [3]
    assert values("hit", hits, pos_len)[0].tolist() == [0, 1, 1, 1, 1]
    assert values("mrr", hits, pos_len)[0].tolist() == [0, 0.5, 0.5, 0.5, 0.5]
    assert values("recall", hits, pos_len)[0].tolist() == pytest.approx([0, 1 / 3, 1 / 3, 2 / 3, 2 / 3])
    assert values("precision", hits, pos_len)[0].tolist() == pytest.approx([0, 1 / 2, 1 / 3, 2 / 4, 2 / 5])
    dcg5 = 1 / L2(3) + 1 / L2(5)
    idcg3 = 1 + 1 / L2(3) + 1 / L2(4)
    assert values("ndcg", hits, pos_len)[0][4] == pytest.approx(dcg5 / idcg3)
    assert values("ndcg", hits, pos_len)[0][1] == pytest.approx((1 / L2(3)) / (1 + 1 / L2(3)))  # IDCG over min(3, 2)
    assert values("map", hits, pos_len)[0][4] == pytest.approx((1 / 2 + 2 / 4) / 3)
    assert values("map", hits, pos_len)[0][1] == pytest.approx((1 / 2) / 2)


def test_fewer_positives_than_k_and_no_hits():
    hits = [[1, 1, 0, 0, 0], [0, 0, 0, 0, 0]]
    pos_len = [2, 1]
    ndcg = values("ndcg", hits, pos_len)
    assert ndcg[0].tolist() == pytest.approx([1, 1, 1, 1, 1])  # both positives first: perfect at every k
    assert ndcg[1].tolist() == [0, 0, 0, 0, 0]
    assert values("map", hits, pos_len)[0].tolist() == pytest.approx([1, 1, 1, 1, 1])
    assert values("recall", hits, pos_len)[0].tolist() == pytest.approx([0.5, 1, 1, 1, 1])
    assert values("precision", hits, pos_len)[0][4] == pytest.approx(0.4)
    for name in RANKING_METRICS:
        assert values(name, hits, pos_len)[1].tolist() == [0, 0, 0, 0, 0], name


def reference(name, hit_row, pos_len, k):
    """Per-user definitions written out literally (RecBole's formulas)."""
    top = hit_row[:k]
    ranks = [r + 1 for r, h in enumerate(top) if h]
    if name == "hit":
        return float(bool(ranks))
    if name == "mrr":
        return 1 / ranks[0] if ranks else 0.0
    if name == "recall":
        return len(ranks) / pos_len
    if name == "precision":
        return len(ranks) / k
    if name == "ndcg":
        dcg = sum(1 / L2(r + 1) for r in ranks)
        return dcg / sum(1 / L2(r + 1) for r in range(1, min(pos_len, k) + 1))
    if name == "map":
        return sum(len([x for x in ranks if x <= r]) / r for r in ranks) / min(pos_len, k)
    raise ValueError(name)


def test_vectorised_metrics_match_the_literal_definitions():
    rng = np.random.default_rng(0)
    hits = rng.random((200, 20)) < 0.2
    pos_len = hits.sum(axis=1) + rng.integers(0, 4, 200)
    pos_len = np.maximum(pos_len, 1)
    for name in RANKING_METRICS:
        fast = values(name, hits.tolist(), pos_len.tolist())
        for u in range(200):
            for k in (1, 5, 10, 20):
                assert fast[u, k - 1] == pytest.approx(reference(name, hits[u].tolist(), int(pos_len[u]), k)), (
                    name,
                    u,
                    k,
                )


def test_evaluator_masks_ranks_and_averages():
    evaluator = Evaluator(["Recall", "NDCG", "Hit"], [1, 2])
    scores = torch.tensor([[9.0, 1.0, 5.0, 5.0, 3.0], [9.0, 4.0, 3.0, 2.0, 1.0]])
    history = (torch.tensor([1]), torch.tensor([1]))  # user row 1 has seen item 1
    _, hits, pos_len, valid = evaluator.rank(scores, history, torch.tensor([0, 1, 1]), torch.tensor([3, 4, 2]))
    assert valid.all()  # both users have at least two candidates
    # row 0: item 0 is padding, items 2 and 3 tie at 5 -> 2 first; positive 3 is at rank 2.
    # row 1: item 1 masked -> ranking 2, 3, 4; positives 4 and 2 -> hit at rank 1.
    assert hits.tolist() == [[False, True], [True, False]]
    assert pos_len.tolist() == [1, 2]
    evaluator.reset()
    evaluator.add_ranking(
        torch.tensor([[9.0, 1.0, 5.0, 5.0, 3.0], [9.0, 4.0, 3.0, 2.0, 1.0]]),
        history,
        torch.tensor([0, 1, 1]),
        torch.tensor([3, 4, 2]),
    )
    result = evaluator.result()
    assert list(result) == ["recall@1", "recall@2", "ndcg@1", "ndcg@2", "hit@1", "hit@2"]
    assert result["recall@2"] == pytest.approx((1 + 0.5) / 2)
    assert result["hit@1"] == 0.5
    assert result["ndcg@2"] == pytest.approx(((1 / L2(3)) / 1 + 1 / (1 + 1 / L2(3))) / 2)


def test_topk_breaks_ties_by_lower_id():
    scores = torch.tensor([[1.0, 3.0, 3.0, 2.0, 3.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]])
    assert topk_items(scores, 3).tolist() == [[1, 2, 4], [5, 0, 1]]
    rng = torch.Generator().manual_seed(3)
    tied = torch.randint(0, 4, (50, 300), generator=rng).float()
    expected = torch.sort(tied, dim=1, descending=True, stable=True).indices[:, :25]
    assert torch.equal(topk_items(tied, 25), expected)
    with pytest.raises(TrainingError, match="NaN scores"):
        topk_items(torch.tensor([[1.0, float("nan")]]), 1)


def test_one_positive_per_row_equals_the_pair_lookup_with_ties_and_fillers():
    """Sequential evaluation (positive_rows = arange(B)) compares each row's top items with its target directly;
    the same pairs in another order take the searchsorted lookup. Hits, positives and every metric are equal, on
    tied scores and on rows with fewer candidates than K, whatever the batch size."""
    rng = torch.Generator().manual_seed(11)
    n_rows, n_items = 60, 40
    scores = torch.randint(0, 4, (n_rows, n_items), generator=rng).float()  # many ties
    scores[torch.rand(n_rows, n_items, generator=rng) < 0.3] = -torch.inf
    scores[:5, 3:] = -torch.inf  # rows with two candidates (items 1, 2): filler slots from rank 3
    targets = torch.randint(0, n_items, (n_rows,), generator=rng)
    targets[:3] = torch.tensor([1, 7, 0])  # a candidate, a masked item, the padding id
    rows = torch.arange(n_rows)
    names = ["Recall", "MRR", "NDCG", "Hit", "Precision", "MAP"]
    evaluator = Evaluator(names, [1, 3, 10, 25])
    top, hits, pos_len, valid = evaluator.rank(scores.clone(), None, rows, targets)
    order = torch.randperm(n_rows, generator=rng)
    top_b, hits_b, pos_len_b, valid_b = evaluator.rank(scores.clone(), None, rows[order], targets[order])
    assert torch.equal(top, top_b) and torch.equal(valid, valid_b)
    assert torch.equal(hits, hits_b) and torch.equal(pos_len, pos_len_b) and pos_len.tolist() == [1] * n_rows
    assert torch.equal(hits, (top == targets.unsqueeze(1)) & valid) and hits.any() and not valid.all()
    assert not hits[1:3].any()  # a masked target and the padding id are never hits
    whole = Evaluator(names, [1, 3, 10, 25])
    whole.add_ranking(scores.clone(), None, rows, targets)
    batched = Evaluator(names, [1, 3, 10, 25])
    for start in range(0, n_rows, 7):
        part = slice(start, start + 7)
        batched.add_ranking(scores[part].clone(), None, rows[: len(rows[part])], targets[part])
    looked_up = Evaluator(names, [1, 3, 10, 25])
    looked_up.add_ranking(scores.clone(), None, rows[order], targets[order])
    expected = whole.per_user()
    for other in (batched, looked_up):
        per_user = other.per_user()
        assert list(per_user) == list(expected)
        assert all(torch.equal(per_user[key], expected[key]) for key in expected)
        assert other.result() == whole.result()
