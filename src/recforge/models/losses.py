"""Loss functions. Pairwise losses share one signature: ``(pos_scores [B], neg_scores [B] or [B, N]) -> scalar``.

``BPRLoss``, ``EmbLoss`` and ``RegLoss`` are RecBole's module forms (``recbole.model.loss``), for models written
for RecBole.
"""

from __future__ import annotations

import torch
from torch import nn


def bpr_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor, gamma: float = 1e-10) -> torch.Tensor:
    """Bayesian personalised ranking: ``mean(-log(gamma + sigmoid(pos - neg)))`` over all (pos, neg) pairs.

    With [B, N] negatives each positive is compared with each of its N negatives. ``gamma`` keeps the log
    finite (RecBole's ``BPRLoss``).
    """
    if neg_scores.dim() == pos_scores.dim() + 1:
        pos_scores = pos_scores.unsqueeze(-1)
    return -torch.log(gamma + torch.sigmoid(pos_scores - neg_scores)).mean()


def embedding_loss(*embeddings: torch.Tensor, norm: int = 2, require_pow: bool = False) -> torch.Tensor:
    """RecBole's embedding regulariser: the sum of the embeddings' ``norm``-norms divided by the batch size (the
    first dimension of the last tensor); with ``require_pow`` the norms are raised to the power ``norm`` and the
    sum is also divided by ``norm``."""
    batch = embeddings[-1].shape[0]
    if require_pow:
        total = sum(torch.linalg.vector_norm(e, ord=norm).pow(norm) for e in embeddings)
        return total / batch / norm
    return sum(torch.linalg.vector_norm(e, ord=norm) for e in embeddings) / batch


class BPRLoss(nn.Module):
    """``bpr_loss`` as a module: ``BPRLoss()(pos_scores, neg_scores)``."""

    def __init__(self, gamma: float = 1e-10) -> None:
        super().__init__()
        self.gamma = gamma

    def forward(self, pos_score: torch.Tensor, neg_score: torch.Tensor) -> torch.Tensor:
        return bpr_loss(pos_score, neg_score, self.gamma)


class EmbLoss(nn.Module):
    """``embedding_loss`` as a module: ``EmbLoss()(user_e, item_e, require_pow=False)``."""

    def __init__(self, norm: int = 2) -> None:
        super().__init__()
        self.norm = norm

    def forward(self, *embeddings: torch.Tensor, require_pow: bool = False) -> torch.Tensor:
        return embedding_loss(*embeddings, norm=self.norm, require_pow=require_pow)


class RegLoss(nn.Module):
    """The sum of the 2-norms of the tensors given, e.g. ``RegLoss()(model.parameters())`` (RecBole's ``RegLoss``)."""

    def forward(self, parameters) -> torch.Tensor:
        return sum(torch.linalg.vector_norm(w, ord=2) for w in parameters)
