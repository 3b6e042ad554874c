"""Loss functions. Pairwise losses share one signature: ``(pos_scores [B], neg_scores [B] or [B, N]) -> scalar``."""

from __future__ import annotations

import torch


def bpr_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor, gamma: float = 1e-10) -> torch.Tensor:
    """Bayesian personalised ranking: ``mean(-log(gamma + sigmoid(pos - neg)))`` over all (pos, neg) pairs.

    With [B, N] negatives each positive is compared with each of its N negatives. ``gamma`` keeps the log
    finite (RecBole's ``BPRLoss``).
    """
    if neg_scores.dim() == pos_scores.dim() + 1:
        pos_scores = pos_scores.unsqueeze(-1)
    return -torch.log(gamma + torch.sigmoid(pos_scores - neg_scores)).mean()
