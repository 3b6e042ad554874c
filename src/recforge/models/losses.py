"""Loss functions. Pairwise losses share one signature: ``(pos_scores [B], neg_scores [B] or [B, N]) -> scalar``.

``BPRLoss``, ``EmbLoss`` and ``RegLoss`` are RecBole's module forms (``recbole.model.loss``), for models written
for RecBole.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
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


def batch_embedding_loss(
    table: torch.Tensor, index: torch.Tensor, groups: list[int], require_pow: bool = False
) -> torch.Tensor:
    """``embedding_loss`` of the rows ``table[index]`` cut into consecutive groups of the given sizes (users,
    positives, negatives), divided by the first group's size. Computed from the rows' squared norms: the value of
    gathering the [len(index), d] rows, at the cost of a [len(index)] gather (a graph model's training step)."""
    squared = table.float().pow(2).sum(dim=1).index_select(0, index)
    per_group = torch.stack([part.sum() for part in squared.split(groups)])
    batch = groups[0]
    if require_pow:
        return per_group.sum() / batch / 2
    return per_group.sqrt().sum() / batch


class _LogSumExpOfProducts(torch.autograd.Function):
    """log(sum_c exp(<a_m, c>)) for every row of A [M, d] against C [C, d], the [M, C] exponentials computed once
    and reused, in place, for the gradient (the logits must be small enough for exp: |<a, c>| <= 80)."""

    @staticmethod
    def forward(ctx: Any, anchors: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        exponentials = torch.exp_(anchors @ candidates.T)
        sums = exponentials.sum(dim=1)
        ctx.save_for_backward(anchors, candidates, exponentials, sums)
        return sums.log()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        anchors, candidates, exponentials, sums = ctx.saved_tensors
        weights = exponentials.mul_((grad / sums).unsqueeze(1))  # softmax x incoming gradient, in place
        return weights @ candidates, weights.T @ anchors


def log_sum_exp_of_products(anchors: torch.Tensor, candidates: torch.Tensor, bound: float) -> torch.Tensor:
    """log(sum_c exp(<a, c>)) per anchor row, in float32 also under autocast; ``bound`` is the largest possible
    |<a, c>| (the fused, 30 % faster path needs it <= 80 so that float32 exp stays finite; beyond, logsumexp)."""
    if bound > 80:
        return torch.logsumexp(anchors @ candidates.T, dim=1)
    with torch.autocast(device_type=anchors.device.type, enabled=False):  # sums of exponentials: float32
        return _LogSumExpOfProducts.apply(anchors.float(), candidates.float())


def info_nce_sum(
    anchors: torch.Tensor,
    positives: torch.Tensor,
    candidates: torch.Tensor,
    tau: float,
    weights: torch.Tensor | None = None,
    normalized: bool = False,
) -> torch.Tensor:
    """sum over anchors a of w_a x -log(exp(<a, p> / tau) / sum_c exp(<a, c> / tau)), every vector L2-normalised
    (SGL's and NCL's contrastive losses); anchors and their positives [M, d], candidates [C, d], weights [M]
    (default 1: a batch's repeated anchors can be given once, weighted by their count, for the same value).
    ``normalized``: the rows are L2-normalised already (a caller that gathers anchors and positives from the
    candidates' table normalises the table once).

    With 1 / tau <= 80 the exponentials are taken directly (|<a, c>| <= 1 keeps them finite in float32, as in
    RecBole); otherwise through logsumexp."""
    if not normalized:
        anchors, positives, candidates = (F.normalize(t, dim=1) for t in (anchors, positives, candidates))
    anchors = anchors / tau  # 1 / tau folded into the [M, d] side of the [M, C] product
    positive = (anchors * positives).sum(dim=1)
    terms = log_sum_exp_of_products(anchors, candidates, 1 / tau) - positive
    return terms.sum() if weights is None else (terms * weights).sum()


def distinct(index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct ids of ``index`` and how often each occurs (float), for weighting per-anchor losses."""
    ids, counts = torch.unique(index, return_counts=True)
    return ids, counts.to(torch.float32)


def info_nce_mean(view_1: torch.Tensor, view_2: torch.Tensor, temperature: float) -> torch.Tensor:
    """mean over rows i of -log(exp(<a_i, b_i> / t) / sum_j exp(<a_i, b_j> / t)) with rows L2-normalised: each
    row of ``view_1`` against the rows of ``view_2`` (SimGCL's in-batch InfoNCE)."""
    view_1, view_2 = F.normalize(view_1, dim=1) / temperature, F.normalize(view_2, dim=1)
    positive = (view_1 * view_2).sum(dim=1)
    return (log_sum_exp_of_products(view_1, view_2, 1 / temperature) - positive).mean()


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
