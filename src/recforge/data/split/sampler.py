"""Negative sampling: items a user has not interacted with, drawn for a whole batch (or epoch) at once.

Candidates are drawn in one tensor op and the ones that hit a known positive are redrawn, only those,
until none is left (rejection sampling against a CSR of the user's items). Nothing loops per user.
"""

from __future__ import annotations

import numpy as np
import torch

from recforge.data.split.history import UserHistory
from recforge.errors import DataError

MAX_ROUNDS = 10_000


def draw_items(n: int, n_items: int, weights: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
    """``n`` item ids: uniform in [1, n_items), or by ``weights`` [n_items] (weight 0 for the padding id 0)."""
    if weights is None:
        return torch.randint(1, n_items, (n,), generator=generator)
    return torch.multinomial(weights, n, replacement=True, generator=generator)


class NegativeSampler:
    """Draw negative items for users, excluding ``history`` (their known positives) and the padding id 0.

    Args:
        history: the items to exclude per user.
        distribution: "uniform" over all items, or "popularity" proportional to ``item_counts ** alpha``.
        item_counts: interactions per item id, needed by "popularity" ([n_items]).
        alpha: exponent of the popularity distribution.
    """

    def __init__(
        self,
        history: UserHistory,
        distribution: str = "uniform",
        item_counts: np.ndarray | None = None,
        alpha: float = 1.0,
    ) -> None:
        self.history = history
        self.n_items = history.n_items
        self.distribution = distribution
        if distribution == "popularity":
            if item_counts is None:
                raise ValueError("popularity sampling needs item_counts")
            weights = torch.as_tensor(np.asarray(item_counts, dtype=np.float64)) ** alpha
            weights[0] = 0.0
            self.weights = weights
            candidates = int((weights > 0).sum())
        else:
            self.weights = None
            candidates = self.n_items - 1
        full = torch.nonzero(history.lengths >= candidates).flatten()
        self._full_users = set(full.tolist())
        self.candidates = candidates

    def _draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return draw_items(n, self.n_items, self.weights, generator)

    def sample(self, users: torch.Tensor, num: int, generator: torch.Generator) -> torch.Tensor:
        """Negatives of shape [len(users), num] (int64), none of them in the user's history."""
        if self._full_users:
            bad = [u for u in users.unique().tolist() if u in self._full_users]
            if bad:
                raise DataError(
                    f"{len(bad)} user(s) (ids {bad[:5]}) interacted with all {self.candidates} candidate items, so "
                    "no negative item exists for them; drop such users with user_inter_num_interval"
                )
        users = users.reshape(-1, 1).expand(-1, num).reshape(-1)
        negatives = self._draw(len(users), generator)
        redo = torch.nonzero(self.history.contains(users, negatives)).flatten()
        rounds = 0
        while len(redo):
            rounds += 1
            if rounds > MAX_ROUNDS:  # pragma: no cover - only with adversarial histories
                raise DataError("negative sampling did not converge; users have too few candidate negatives")
            fresh = self._draw(len(redo), generator)
            negatives[redo] = fresh
            redo = redo[self.history.contains(users[redo], fresh)]
        return negatives.view(-1, num)


class TargetSampler:
    """Negatives of sequential examples (RecBole's ``RepeatableSampler``): items in [1, n_items) other than each
    example's target; the history is not excluded, as in RecBole.

    Args:
        n_items: the item vocabulary size (ids 1..n_items - 1 are candidates).
        distribution: "uniform", or "popularity" proportional to ``item_counts ** alpha``.
        item_counts: [n_items] the examples' targets per item, needed by "popularity".
        alpha: exponent of the popularity distribution.
    """

    by_item = True  # ``sample`` takes the targets, not the users

    def __init__(
        self, n_items: int, distribution: str = "uniform", item_counts: np.ndarray | None = None, alpha: float = 1.0
    ) -> None:
        if n_items < 3:
            raise DataError(f"negative sampling needs at least 2 items besides the target's; there are {n_items - 1}")
        self.n_items = n_items
        self.distribution = distribution
        self.weights = None
        if distribution == "popularity":
            if item_counts is None:
                raise ValueError("popularity sampling needs item_counts")
            self.weights = torch.as_tensor(np.asarray(item_counts, dtype=np.float64)) ** alpha
            self.weights[0] = 0.0

    def sample(self, targets: torch.Tensor, num: int, generator: torch.Generator) -> torch.Tensor:
        """Negatives [len(targets), num] (int64), none equal to its row's target."""
        targets = targets.reshape(-1, 1).expand(-1, num).reshape(-1)
        negatives = self._draw(len(targets), generator)
        redo = torch.nonzero(negatives == targets).flatten()
        while len(redo):
            fresh = self._draw(len(redo), generator)
            negatives[redo] = fresh
            redo = redo[fresh == targets[redo]]
        return negatives.view(-1, num)

    def _draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return draw_items(n, self.n_items, self.weights, generator)
