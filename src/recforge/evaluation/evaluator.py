"""Full-ranking evaluation: mask history -> top-k once (ties by lower item id) -> hit matrix -> every metric
in one pass.

Per-user metric values are kept (float64, in user order) and averaged once at the end, so results do not
depend on how users were batched, not even in the last bit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from recforge.evaluation.metrics import RANKING_METRICS, metric_key
from recforge.evaluation.ranking import topk_items


class TopKEvaluator:
    """Accumulates ranking metrics over batches of users.

    Args:
        metrics: metric names (any case), e.g. ["Recall", "NDCG"].
        topk: cut-offs, e.g. [10, 20].
    """

    def __init__(self, metrics: list[str], topk: list[int]) -> None:
        self.metrics = [m.lower() for m in metrics]
        self.topk = sorted(set(topk))
        self.max_k = max(self.topk)
        self.reset()

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TopKEvaluator:
        return cls(config["metrics"], config["topk"])

    def reset(self) -> None:
        self.values: dict[str, list[torch.Tensor]] = {metric_key(m, k): [] for m in self.metrics for k in self.topk}
        self.users = 0

    def rank(
        self,
        scores: torch.Tensor,
        history: tuple[torch.Tensor, torch.Tensor],
        positive_rows: torch.Tensor,
        positive_items: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mask padding and history in ``scores`` [B, n_items] (in place) and return ``(hits [B, K], pos_len [B])``."""
        scores[:, 0] = -torch.inf
        scores[history[0], history[1]] = -torch.inf
        top_items = topk_items(scores, self.max_k)
        positive = torch.zeros(scores.shape, dtype=torch.bool, device=scores.device)
        positive[positive_rows, positive_items] = True
        hits = positive.gather(1, top_items)
        pos_len = torch.bincount(positive_rows, minlength=scores.shape[0])
        return hits, pos_len

    def add(self, hits: torch.Tensor, pos_len: torch.Tensor) -> None:
        """Add a batch of users given their hit matrix [B, K] and positive counts [B]."""
        for name in self.metrics:
            values = RANKING_METRICS[name](hits, pos_len)
            for k in self.topk:
                self.values[metric_key(name, k)].append(values[:, k - 1].cpu())
        self.users += int(hits.shape[0])

    def per_user(self) -> dict[str, torch.Tensor]:
        """``{metric@k: [U] float64}``: every evaluated user's value, in evaluation order."""
        return {
            key: torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64)
            for key, parts in self.values.items()
        }

    def result(self) -> dict[str, float]:
        """``{metric@k: mean over users}`` in the order of ``metrics`` then ``topk`` (0.0 with no users)."""
        return {key: float(values.mean()) if len(values) else 0.0 for key, values in self.per_user().items()}
