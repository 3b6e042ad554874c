"""Evaluation: ranking (full or sampled) or labelled scoring, every configured metric from one pass.

Ranking: mask padding and history -> top-k once (ties by lower item id) -> hit matrix -> ranking metrics;
the same top-k lists feed the beyond-accuracy metrics, and GAUC reads the positives' average ranks.
Labelled: predicted scores, labels and users are collected and the value metrics computed at the end.
Per-user values are kept (float64, in evaluation order) and averaged once, so results do not depend on how
users were batched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch

from recforge.errors import ConfigError
from recforge.evaluation import metrics as M
from recforge.evaluation.ranking import topk_items
from recforge.registry import BEYOND, RANKING, VALUE, metric_spec


class Evaluator:
    """Accumulates the configured metrics over batches.

    Args:
        metrics: metric names (any case), e.g. ["Recall", "NDCG", "ItemCoverage"].
        topk: cut-offs of the @k metrics, e.g. [10, 20].
        tail_ratio: the long-tail definition of TailPercentage.
        tie_break: "lowest_id" (equal scores: lower item id first) or "torch_topk" (torch.topk's order).
    """

    def __init__(
        self, metrics: list[str], topk: list[int], tail_ratio: float = 0.1, tie_break: str = "lowest_id"
    ) -> None:
        self.metrics = [m.lower() for m in metrics]
        self.metric_names = list(metrics)  # as the config spells them (for messages)
        self.tie_break = tie_break
        self.topk = sorted(set(topk))
        self.max_k = max(self.topk)
        self.tail_ratio = tail_ratio
        self.kinds = {name: M.METRICS[name].kind for name in self.metrics}
        self.item_counts: np.ndarray | None = None
        self.reset()

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Evaluator:
        return cls(config["metrics"], config["topk"], config["tail_ratio"], config["eval_tie_break"])

    def reset(self) -> None:
        self.per_user_values: dict[str, list[torch.Tensor]] = {}
        self.recommended: dict[int, np.ndarray] = {}
        self.gauc_parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.labelled: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def set_item_counts(self, item_counts: np.ndarray | None) -> None:
        """Training interactions per item id, needed by AveragePopularity and TailPercentage."""
        self.item_counts = None if item_counts is None else np.asarray(item_counts)

    def _needs(self, kind: str) -> bool:
        return kind in self.kinds.values()

    @property
    def needs_labels(self) -> bool:
        """Whether a value metric (AUC, LogLoss, MAE, RMSE) is asked for: sampled ranking then also feeds labels."""
        return self._needs(M.VALUE)

    # -- ranking -----------------------------------------------------------------------------------
    def rank(
        self,
        scores: torch.Tensor,
        history: tuple[torch.Tensor, torch.Tensor] | None,
        positive_rows: torch.Tensor,
        positive_items: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mask padding and ``history`` in ``scores`` [B, n_items] (in place; it must be contiguous); returns
        ``(top_items [B, K], hits [B, K], pos_len [B], valid [B, K])``. ``valid`` is False where a user has fewer
        than K candidates and the slot holds a masked filler item."""
        scores[:, 0] = -torch.inf
        if history is not None:  # one fill over flat indices: ~2.7x faster than a 2-d index_put
            scores.view(-1).index_fill_(0, history[0] * scores.shape[1] + history[1], -torch.inf)
        if self.tie_break == "lowest_id":
            top_items = topk_items(scores, self.max_k)
        else:
            top_items = torch.topk(scores, self.max_k, dim=1).indices
        hits, pos_len = _hits(top_items, positive_rows, positive_items, scores.shape[1])
        valid = torch.isfinite(scores.gather(1, top_items))
        hits &= valid  # a filler slot (a user with fewer than K candidates) holds no recommendation, so no hit
        return top_items, hits, pos_len, valid

    def add_ranking(
        self,
        scores: torch.Tensor,
        history: tuple[torch.Tensor, torch.Tensor] | None,
        positive_rows: torch.Tensor,
        positive_items: torch.Tensor,
    ) -> None:
        """Add a batch of users: ``scores`` [B, n_items] (modified in place; -inf marks non-candidates)."""
        scores = scores.contiguous()
        top_items, hits, pos_len, valid = self.rank(scores, history, positive_rows, positive_items)
        if self._needs(M.GROUPED) and not self.needs_labels:
            self.gauc_parts.append(M.ranking_gauc_parts(scores, positive_rows, positive_items))
        cum = hits.cumsum(dim=1)  # shared by recall, precision, hit and MAP
        for name, kind in self.kinds.items():
            if kind == M.RANKING:
                self._keep_per_user(name, M.METRICS[name].fn(hits, pos_len, cum=cum))
            elif name == "averagepopularity":
                self._keep_per_user(name, M.average_popularity(top_items, self._popularity(top_items), valid))
            elif name == "tailpercentage":
                tail = torch.from_numpy(M.tail_items(self._counts(), self.tail_ratio)).to(top_items.device)
                self._keep_per_user(name, M.tail_percentage(top_items, tail, valid))
        if any(name in ("itemcoverage", "giniindex", "shannonentropy") for name in self.kinds):
            n = scores.shape[1]
            for k in self.topk:
                shown = top_items[:, :k][valid[:, :k]]  # filler items of users with fewer than k candidates: none
                counts = np.bincount(shown.cpu().numpy(), minlength=n)
                self.recommended[k] = self.recommended.get(k, np.zeros(n, dtype=np.int64)) + counts

    def _keep_per_user(self, name: str, values: torch.Tensor) -> None:
        """Keep column k-1 of ``values`` [B, K] for every k, on the scores' device (moved to the CPU once, by
        ``per_user`` / ``state``: no device sync per batch)."""
        for k in self.topk:
            self.per_user_values.setdefault(M.metric_key(name, k), []).append(values[:, k - 1].clone())

    def _counts(self) -> np.ndarray:
        if self.item_counts is None:
            raise ValueError("AveragePopularity / TailPercentage need training item counts (set_item_counts)")
        return self.item_counts

    def _popularity(self, top_items: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self._counts()).to(top_items.device)

    # -- labelled ----------------------------------------------------------------------------------
    def add_labelled(self, scores: torch.Tensor, labels: torch.Tensor, users: torch.Tensor) -> None:
        """Add labelled rows: predicted ``scores`` [R], true ``labels`` [R], their ``users`` [R]."""
        self.labelled.append(
            (
                scores.detach().float().cpu().numpy(),
                labels.detach().double().cpu().numpy(),
                users.detach().cpu().numpy(),
            )
        )

    # -- distributed evaluation ----------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """What was accumulated so far, as plain arrays (to be gathered from every rank)."""
        return {
            "per_user": self.per_user(),
            "recommended": dict(self.recommended),
            "gauc_parts": list(self.gauc_parts),
            "labelled": list(self.labelled),
        }

    def load_states(self, states: list[dict[str, Any]]) -> None:
        """Replace the accumulated values by those of ``states`` (one per rank), concatenated in order."""
        self.reset()
        for state in states:
            for key, values in state["per_user"].items():
                self.per_user_values.setdefault(key, []).append(values)
            for k, counts in state["recommended"].items():
                self.recommended[k] = self.recommended.get(k, 0) + counts
            self.gauc_parts.extend(state["gauc_parts"])
            self.labelled.extend(state["labelled"])

    # -- results -----------------------------------------------------------------------------------
    def per_user(self) -> dict[str, torch.Tensor]:
        """``{metric@k: [U] float64}`` for the per-user metrics, in evaluation order."""
        return {key: torch.cat(parts).cpu() for key, parts in self.per_user_values.items()}

    def result(self) -> dict[str, float]:
        """``{metric key: value}`` in the order of ``metrics`` then ``topk``."""
        per_user = self.per_user()
        out: dict[str, float] = {}
        labelled = None
        if self.labelled:
            labelled = tuple(np.concatenate([part[i] for part in self.labelled]) for i in range(3))
        for name in self.metrics:
            metric = M.METRICS[name]
            if metric.kind == M.VALUE:
                out[name] = metric.fn(labelled[0], labelled[1]) if labelled is not None else float("nan")
            elif metric.kind == M.GROUPED:
                out[name] = self._gauc(labelled)
            elif name in ("itemcoverage", "giniindex", "shannonentropy"):
                for k in self.topk:
                    counts = self.recommended.get(k)
                    n_items = len(counts) - 1 if counts is not None else 0
                    out[M.metric_key(name, k)] = metric.fn(counts, n_items) if counts is not None else 0.0
            else:
                for k in self.topk:
                    values = per_user.get(M.metric_key(name, k))
                    out[M.metric_key(name, k)] = float(values.mean()) if values is not None and len(values) else 0.0
        return out

    def _gauc(self, labelled) -> float:
        if labelled is not None:
            return M.grouped_auc(labelled[0], labelled[1], labelled[2])
        if not self.gauc_parts:
            return float("nan")
        positives, candidates, rank_sum = (np.concatenate([part[i] for part in self.gauc_parts]) for i in range(3))
        return M.weighted_user_auc(positives, candidates - positives, rank_sum)


def _hits(
    top_items: torch.Tensor, positive_rows: torch.Tensor, positive_items: torch.Tensor, n_items: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(hits [B, K], pos_len [B])``: whether each top item is one of its row's positives (``positive_rows`` /
    ``positive_items``, pairs in any order), and each row's number of positives.

    One positive per row in row order (sequential evaluation: ``positive_rows`` is ``arange(B)``) is compared
    directly, a single elementwise pass; otherwise the pairs are looked up by ``searchsorted``. Both give the same
    values."""
    n_rows = len(top_items)
    if len(positive_rows) == n_rows and n_rows:
        rows = torch.arange(n_rows, device=positive_rows.device)
        if bool((positive_rows == rows).all()):
            return top_items == positive_items.unsqueeze(1), torch.ones_like(positive_rows)
    keys = positive_rows * n_items + positive_items
    if len(keys) > 1 and not bool((keys[1:] >= keys[:-1]).all()):  # loaders give them sorted already
        keys = torch.sort(keys).values
    rows = torch.arange(n_rows, device=top_items.device).unsqueeze(1)
    query = rows * n_items + top_items
    found = torch.searchsorted(keys, query).clamp_(max=max(len(keys) - 1, 0))
    hits = keys[found] == query if len(keys) else torch.zeros_like(query, dtype=torch.bool)
    return hits, torch.bincount(positive_rows, minlength=n_rows)


def check_mode(metrics: Iterable[str], mode: str, phase: str | None) -> None:
    """A ConfigError when a metric cannot be computed in an evaluation ``mode`` ("full", "sampled", "labeled"):
    ranking and beyond-accuracy metrics need ranked candidates (full, uniN, popN); value metrics need labels
    (labeled, or uniN / popN where the positives are labelled 1 and the sampled negatives 0, as in RecBole)."""
    where = f"eval_args.mode.{phase}" if phase else "the evaluation mode"
    for name in metrics:
        kind = metric_spec(name).kind
        if kind in (RANKING, BEYOND) and mode == "labeled":
            raise ConfigError(
                f"metric {name} ranks items, but {where} is 'labeled', which scores the labelled interactions one by "
                "one; use a value metric (AUC, GAUC, LogLoss, MAE, RMSE) or mode full / uniN"
            )
        if kind == VALUE and mode == "full":
            raise ConfigError(
                f"metric {name} compares predictions with labels, but {where} is 'full', which has no labels; use "
                "mode labeled (with threshold or a label column), uniN / popN (positives against sampled negatives) "
                "or a ranking metric"
            )
