"""Ranking metrics with RecBole's definitions, computed for every cut-off from one top-k hit matrix.

Every metric has the same signature: ``metric(hits, pos_len) -> values`` where ``hits`` is a bool tensor
[U, K] (``hits[u, j]``: the item at rank j+1 of user u is one of u's positives in the evaluated split),
``pos_len`` [U] is each user's number of positives, and ``values`` [U, K] (float64) holds the metric of each
user at every cut-off k = 1..K. The reported value of ``metric@k`` is the mean of column k-1 over users.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from recforge.errors import ConfigError, did_you_mean

MetricFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _ranks(hits: torch.Tensor) -> torch.Tensor:
    return torch.arange(1, hits.shape[1] + 1, dtype=torch.float64, device=hits.device)


def hit(hits: torch.Tensor, pos_len: torch.Tensor) -> torch.Tensor:
    """Hit@k = 1 if any of the top k items is a positive, else 0."""
    return (hits.cumsum(dim=1) > 0).to(torch.float64)


def mrr(hits: torch.Tensor, pos_len: torch.Tensor) -> torch.Tensor:
    """MRR@k = 1 / rank of the first positive within the top k, 0 if there is none."""
    reciprocal = torch.where(hits, 1.0 / _ranks(hits), torch.zeros((), dtype=torch.float64, device=hits.device))
    return reciprocal.cummax(dim=1).values


def recall(hits: torch.Tensor, pos_len: torch.Tensor) -> torch.Tensor:
    """Recall@k = (positives in the top k) / (all of the user's positives)."""
    return hits.cumsum(dim=1).to(torch.float64) / pos_len.to(torch.float64).unsqueeze(1)


def precision(hits: torch.Tensor, pos_len: torch.Tensor) -> torch.Tensor:
    """Precision@k = (positives in the top k) / k."""
    return hits.cumsum(dim=1).to(torch.float64) / _ranks(hits)


def ndcg(hits: torch.Tensor, pos_len: torch.Tensor) -> torch.Tensor:
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


def average_precision(hits: torch.Tensor, pos_len: torch.Tensor) -> torch.Tensor:
    """MAP@k = (1 / min(pos_len, k)) * sum over ranks r <= k holding a positive of Precision@r."""
    hits_f = hits.to(torch.float64)
    precision_at = hits_f.cumsum(dim=1) / _ranks(hits)
    summed = (precision_at * hits_f).cumsum(dim=1)
    cutoffs = torch.arange(1, hits.shape[1] + 1, device=hits.device)
    return summed / torch.minimum(pos_len.unsqueeze(1), cutoffs.unsqueeze(0)).to(torch.float64)


RANKING_METRICS: dict[str, MetricFn] = {
    "recall": recall,
    "mrr": mrr,
    "ndcg": ndcg,
    "hit": hit,
    "precision": precision,
    "map": average_precision,
}


def metric_key(name: str, k: int | None = None) -> str:
    """The result key of a metric, lower-case as RecBole prints it: ``recall@10``."""
    return f"{name.lower()}@{k}" if k is not None else name.lower()


def check_metric_config(metrics: list[str], topk: list[int], valid_metric: str) -> None:
    """Reject unknown metrics and a valid_metric that is not computed, when the config is read."""
    for name in metrics:
        if name.lower() not in RANKING_METRICS:
            raise ConfigError(
                f"config key 'metrics': unknown metric {name!r}{did_you_mean(name, RANKING_METRICS)}; "
                f"known: {', '.join(RANKING_METRICS)}"
            )
    name, at, k = valid_metric.partition("@")
    computed = {m.lower() for m in metrics}
    if name.lower() not in computed:
        raise ConfigError(
            f"config key 'valid_metric': {valid_metric!r} is not among the computed metrics "
            f"({', '.join(metrics)}); add {name!r} to metrics or pick one of them"
        )
    if name.lower() in RANKING_METRICS:
        if not at or not k.strip().isdigit():
            raise ConfigError(f"config key 'valid_metric': {valid_metric!r} needs a cut-off, e.g. {name}@{topk[0]}")
        if int(k) not in topk:
            raise ConfigError(f"config key 'valid_metric': {valid_metric!r} uses k={k}, which is not in topk {topk}")
