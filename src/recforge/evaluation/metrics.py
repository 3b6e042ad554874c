"""RecBole's 16 metrics. Each is a small function with its formula; ``METRICS`` says what each needs.

Ranking metrics (full or sampled ranking) share one signature, ``metric(hits, pos_len, cum=None) -> values`` (``cum``:
``hits.cumsum(dim=1)`` when the caller has it already): ``hits`` is
a bool tensor [U, K] (``hits[u, j]``: the item at rank j+1 of user u is one of u's positives in the evaluated
split), ``pos_len`` [U] the users' numbers of positives, ``values`` [U, K] float64, the metric of each user at
every cut-off k = 1..K. ``metric@k`` is the mean of column k-1 over users.

Beyond-accuracy metrics read the top-k lists of all users and the training popularity of items. Value metrics
(labelled evaluation) read predicted scores and true labels. GAUC works in both settings: in ranking modes from
the average rank of each positive among the user's candidates (RecBole's definition), in labelled mode from
each user's labelled rows.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from recforge.registry import BEYOND, GROUPED, RANKING, VALUE, register_metric

logger = logging.getLogger("recforge")


def _ranks(hits: torch.Tensor) -> torch.Tensor:
    return torch.arange(1, hits.shape[1] + 1, dtype=torch.float64, device=hits.device)


# -- ranking -----------------------------------------------------------------------------------------


def _cum(hits: torch.Tensor, cum: torch.Tensor | None) -> torch.Tensor:
    return hits.cumsum(dim=1) if cum is None else cum


def hit(hits: torch.Tensor, pos_len: torch.Tensor, cum: torch.Tensor | None = None) -> torch.Tensor:
    """Hit@k = 1 if any of the top k items is a positive, else 0."""
    return (_cum(hits, cum) > 0).to(torch.float64)


def mrr(hits: torch.Tensor, pos_len: torch.Tensor, cum: torch.Tensor | None = None) -> torch.Tensor:
    """MRR@k = 1 / rank of the first positive within the top k, 0 if there is none."""
    reciprocal = torch.where(hits, 1.0 / _ranks(hits), torch.zeros((), dtype=torch.float64, device=hits.device))
    return reciprocal.cummax(dim=1).values


def recall(hits: torch.Tensor, pos_len: torch.Tensor, cum: torch.Tensor | None = None) -> torch.Tensor:
    """Recall@k = (positives in the top k) / (all of the user's positives)."""
    return _cum(hits, cum).to(torch.float64) / pos_len.to(torch.float64).unsqueeze(1)


def precision(hits: torch.Tensor, pos_len: torch.Tensor, cum: torch.Tensor | None = None) -> torch.Tensor:
    """Precision@k = (positives in the top k) / k."""
    return _cum(hits, cum).to(torch.float64) / _ranks(hits)


def ndcg(hits: torch.Tensor, pos_len: torch.Tensor, cum: torch.Tensor | None = None) -> torch.Tensor:
    """NDCG@k = DCG@k / IDCG@k with binary relevance.

    DCG@k = sum over ranks r <= k holding a positive of 1 / log2(r + 1); IDCG@k is the DCG of a ranking with
    all positives first, i.e. the sum of 1 / log2(r + 1) for r <= min(pos_len, k).
    """
    discount = 1.0 / torch.log2(_ranks(hits) + 1.0)
    dcg = (hits.to(torch.float64) * discount).cumsum(dim=1)
    ideal_table = discount.cumsum(dim=0)
    cutoffs = torch.arange(1, hits.shape[1] + 1, device=hits.device)
    ideal_len = torch.minimum(pos_len.unsqueeze(1), cutoffs.unsqueeze(0))
    return dcg / ideal_table[ideal_len - 1]


def average_precision(hits: torch.Tensor, pos_len: torch.Tensor, cum: torch.Tensor | None = None) -> torch.Tensor:
    """MAP@k = (1 / min(pos_len, k)) * sum over ranks r <= k holding a positive of Precision@r."""
    hits_f = hits.to(torch.float64)
    precision_at = _cum(hits, cum).to(torch.float64) / _ranks(hits)
    summed = (precision_at * hits_f).cumsum(dim=1)
    cutoffs = torch.arange(1, hits.shape[1] + 1, device=hits.device)
    return summed / torch.minimum(pos_len.unsqueeze(1), cutoffs.unsqueeze(0)).to(torch.float64)


# -- beyond accuracy (from the top-k lists) ------------------------------------------------------------


def item_coverage(recommended: np.ndarray, n_items: int) -> float:
    """ItemCoverage@k = |items appearing in any user's top k| / (number of items, padding excluded).

    ``recommended`` [n_items + 1] counts how often each item id appeared in the top k lists.
    """
    return float((recommended[1:] > 0).sum()) / n_items


def gini_index(recommended: np.ndarray, n_items: int) -> float:
    """GiniIndex@k of how often items are recommended (0: all equally, towards 1: a few items only).

    With the m recommended items' counts c_1 <= ... <= c_m placed at positions j = n - m + 1 .. n among all
    n items: Gini = sum_j (2j - n - 1) c_j / (n * sum_j c_j).
    """
    counts = np.sort(recommended[1:][recommended[1:] > 0]).astype(np.float64)
    if not len(counts):
        return 0.0
    positions = np.arange(n_items - len(counts) + 1, n_items + 1)
    return float(((2 * positions - n_items - 1) * counts).sum() / (n_items * counts.sum()))


def shannon_entropy(recommended: np.ndarray, n_items: int) -> float:
    """ShannonEntropy@k as RecBole 1.2.1 computes it: (-sum_i p_i ln p_i) / m, with p_i = (times item i is in a
    top k) / (all recommended slots) and m the number of distinct recommended items.

    (RecBole's docstring shows only the sum; its code divides by m, and recforge follows the code so that
    numbers compare.)
    """
    counts = recommended[recommended > 0].astype(np.float64)
    if not len(counts):
        return 0.0
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum() / len(counts))


def _mean_over_valid(values: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """Running mean over ranks 1..k of ``values`` [U, K], counting only ``valid`` slots (all when None)."""
    if valid is None:
        return values.cumsum(dim=1) / _ranks(values)
    shown = valid.to(torch.float64)
    return (values * shown).cumsum(dim=1) / shown.cumsum(dim=1).clamp(min=1.0)


def average_popularity(
    top_items: torch.Tensor, popularity: torch.Tensor, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """AveragePopularity@k = mean over the top k of the items' training interaction counts, per user ([U, K]).

    ``valid`` [U, K] marks real recommendations; masked filler items (users with fewer than k candidates) count
    in neither the sum nor the number of items.
    """
    return _mean_over_valid(popularity[top_items].to(torch.float64), valid)


def tail_percentage(top_items: torch.Tensor, is_tail: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """TailPercentage@k = share of the top k items that are long-tail items, per user ([U, K]); filler items
    (``valid`` False) do not count.

    Tail items (``tail_items``): with tail_ratio > 1, training items with at most tail_ratio interactions; with
    tail_ratio <= 1, that share of the training items, least popular first (ties by lower id).
    """
    return _mean_over_valid(is_tail[top_items].to(torch.float64), valid)


def tail_items(item_counts: np.ndarray, tail_ratio: float) -> np.ndarray:
    """Boolean [n_items + 1]: the long-tail items among those with training interactions (RecBole's rule)."""
    present = np.flatnonzero(item_counts > 0)
    tail = np.zeros(len(item_counts), dtype=bool)
    if tail_ratio > 1:
        tail[present[item_counts[present] <= tail_ratio]] = True
    elif len(present):
        order = present[np.lexsort((present, item_counts[present]))]
        tail[order[: max(int(len(present) * tail_ratio), 1)]] = True
    return tail


# -- value metrics (labelled rows) -------------------------------------------------------------------


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """AUC = P(score of a positive > score of a negative), ties counting one half (the area under the ROC
    curve, trapezoidal). With average ranks r of the positives: (sum r - P(P+1)/2) / (P N). NaN, with a warning,
    when there are no positives or no negatives."""
    positive = labels > 0.5
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        logger.warning(
            "AUC is undefined without both positive and negative labels (%d / %d); reported as NaN", n_pos, n_neg
        )
        return math.nan
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores))
    ranks[order] = average_ranks_in_groups(np.zeros(len(scores), dtype=np.int8), scores[order])
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def grouped_auc(scores: np.ndarray, labels: np.ndarray, users: np.ndarray) -> float:
    """GAUC = sum_u P_u AUC_u / sum_u P_u over users with both positive and negative rows (P_u: positives);
    users without positives or without negatives are dropped with a warning."""
    order = np.lexsort((scores, users))
    users, scores, labels = users[order], scores[order], labels[order] > 0.5
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    size = np.diff(np.r_[starts, len(users)])
    pos = np.add.reduceat(labels.astype(np.int64), starts)
    ranks = average_ranks_in_groups(users, scores) - np.repeat(starts, size)
    pos_rank_sum = np.add.reduceat(np.where(labels, ranks, 0.0), starts)
    return weighted_user_auc(pos, size - pos, pos_rank_sum)


def average_ranks_in_groups(groups: np.ndarray, values: np.ndarray) -> np.ndarray:
    """1-based average ranks of ``values`` sorted by (group, value): equal (group, value) runs share the mean
    of their positions. Inputs must already be in that order."""
    n = len(values)
    new_run = np.r_[True, (groups[1:] != groups[:-1]) | (values[1:] != values[:-1])]
    run = np.cumsum(new_run) - 1
    first = np.flatnonzero(new_run)
    last = np.r_[first[1:], n] - 1
    return (first[run] + last[run]) / 2 + 1


def ranking_gauc_parts(scores: torch.Tensor, positive_rows: torch.Tensor, positive_items: torch.Tensor):
    """Per user of a ranking batch: (positives, candidates, ascending average rank sum of the positives).

    Candidates are the items with a finite score (masked items are -inf); ties share their average rank.
    """
    n_rows = len(scores)
    finite = torch.isfinite(scores)
    candidates = finite.sum(dim=1)
    ordered = torch.where(finite, scores, torch.full_like(scores, torch.inf)).sort(dim=1).values
    positives = torch.bincount(positive_rows, minlength=n_rows)
    order = torch.argsort(positive_rows, stable=True)
    rows, items = positive_rows[order], positive_items[order]
    slot = torch.arange(len(rows), device=scores.device) - (torch.cumsum(positives, 0) - positives)[rows]
    width = int(positives.max()) if len(rows) else 0
    padded = torch.full((n_rows, max(width, 1)), torch.inf, dtype=scores.dtype, device=scores.device)
    padded[rows, slot] = scores[rows, items]
    below = torch.searchsorted(ordered, padded, right=False)
    up_to = torch.searchsorted(ordered, padded, right=True)
    ranks = below.double() + (up_to - below + 1).double() / 2
    valid = torch.arange(padded.shape[1], device=scores.device).unsqueeze(0) < positives.unsqueeze(1)
    rank_sum = torch.where(valid, ranks, torch.zeros_like(ranks)).sum(dim=1)
    return positives.cpu().numpy(), candidates.cpu().numpy(), rank_sum.cpu().numpy()


def weighted_user_auc(pos: np.ndarray, neg: np.ndarray, pos_rank_sum: np.ndarray) -> float:
    """Combine per-user (ascending) rank sums of positives into GAUC."""
    usable = (pos > 0) & (neg > 0)
    dropped_pos, dropped_neg = int((pos == 0).sum()), int((neg == 0).sum())
    if dropped_pos:
        logger.warning("GAUC: %d user(s) without positives were left out", dropped_pos)
    if dropped_neg:
        logger.warning("GAUC: %d user(s) without negatives were left out", dropped_neg)
    if not usable.any():
        return math.nan
    pos, neg, pos_rank_sum = pos[usable], neg[usable], pos_rank_sum[usable]
    user_auc = (pos_rank_sum - pos * (pos + 1) / 2) / (pos * neg)
    return float((user_auc * pos).sum() / pos.sum())


def log_loss(scores: np.ndarray, labels: np.ndarray) -> float:
    """LogLoss = mean of -y ln p - (1 - y) ln(1 - p), with p clipped to [1e-15, 1 - 1e-15] (p: predicted
    probabilities)."""
    p = np.clip(scores.astype(np.float64), 1e-15, 1 - 1e-15)
    return float(np.mean(-labels * np.log(p) - (1 - labels) * np.log(1 - p)))


def mae(scores: np.ndarray, labels: np.ndarray) -> float:
    """MAE = mean |prediction - label|."""
    return float(np.mean(np.abs(scores.astype(np.float64) - labels)))


def rmse(scores: np.ndarray, labels: np.ndarray) -> float:
    """RMSE = sqrt(mean (prediction - label)^2)."""
    return float(np.sqrt(np.mean((scores.astype(np.float64) - labels) ** 2)))


# -- registry ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """A metric's kind (ranking, beyond-accuracy, value, grouped), whether it takes a cut-off, its function."""

    name: str
    kind: str
    at_k: bool
    fn: Callable


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("recall", RANKING, True, recall),
        Metric("mrr", RANKING, True, mrr),
        Metric("ndcg", RANKING, True, ndcg),
        Metric("hit", RANKING, True, hit),
        Metric("precision", RANKING, True, precision),
        Metric("map", RANKING, True, average_precision),
        Metric("itemcoverage", BEYOND, True, item_coverage),
        Metric("averagepopularity", BEYOND, True, average_popularity),
        Metric("giniindex", BEYOND, True, gini_index),
        Metric("shannonentropy", BEYOND, True, shannon_entropy),
        Metric("tailpercentage", BEYOND, True, tail_percentage),
        Metric("auc", VALUE, False, auc),
        Metric("logloss", VALUE, False, log_loss),
        Metric("mae", VALUE, False, mae),
        Metric("rmse", VALUE, False, rmse),
        Metric("gauc", GROUPED, False, grouped_auc),
    )
}
RANKING_METRICS = {name: m.fn for name, m in METRICS.items() if m.kind == RANKING}
for _metric in METRICS.values():
    register_metric(_metric)


def metric_key(name: str, k: int | None = None) -> str:
    """The result key of a metric, lower-case as RecBole prints it: ``recall@10``, ``auc``."""
    return f"{name.lower()}@{k}" if k is not None else name.lower()
