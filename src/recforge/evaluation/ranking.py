"""Top-k selection with a fixed tie rule: higher score first, and among equal scores the lower item id first.

``torch.topk`` leaves the order of equal scores unspecified (it differs between CPU and CUDA, between
versions, and from one row length to another), so metrics of models with tied scores, such as Pop, would
not be exactly reproducible. Here ties are resolved explicitly; the cost is one comparison pass over the
score matrix, plus a mask pass on the rows whose k-th score is tied with items outside the top k.
"""

from __future__ import annotations

import torch

from recforge.errors import TrainingError


def topk_items(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Item ids [B, k] of the k best scores of each row of ``scores`` [B, N], best first, ties by lower id.

    NaN scores mean the model diverged or is broken: TrainingError.
    """
    n = scores.shape[1]
    values, items = torch.topk(scores, min(k + 1, n), dim=1)
    if torch.isnan(values[:, 0]).any():  # topk ranks NaN highest, so a row with a NaN has it first
        raise TrainingError(
            "the model produced NaN scores (diverged training?); lower learning_rate or set clip_grad_norm"
        )
    needs_order = torch.zeros(len(scores), dtype=torch.bool, device=scores.device)
    if k < n:
        # The k-th score is tied with an item outside the top k exactly when the (k+1)-th equals it.
        ambiguous = torch.nonzero(values[:, k] == values[:, k - 1]).flatten()
        values, items = values[:, :k], items[:, :k]
        if len(ambiguous):
            rows = scores[ambiguous]
            kth = values[ambiguous, k - 1 :]
            tied_inside = (values[ambiguous] == kth).sum(dim=1, keepdim=True)
            equal = rows == kth
            keep = (rows > kth) | (equal & (equal.cumsum(dim=1) <= tied_inside))
            items[ambiguous] = torch.nonzero(keep)[:, 1].view(len(ambiguous), k)
            values[ambiguous] = rows.gather(1, items[ambiguous])
            needs_order[ambiguous] = True
    # Rows with equal scores inside the top k: order by score descending, then id ascending
    # (sort by id, then stable sort by score).
    tied = torch.nonzero(needs_order | (values[:, 1:] == values[:, :-1]).any(dim=1)).flatten()
    if len(tied):
        by_id = items[tied].sort(dim=1)
        order = values[tied].gather(1, by_id.indices).sort(dim=1, descending=True, stable=True).indices
        items[tied] = by_id.values.gather(1, order)
    return items
