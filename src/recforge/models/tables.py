"""Scores as inner products of a user table and an item table that one pass over a whole graph computes: the
tables are computed once per evaluation and reused by every batch."""

from __future__ import annotations

import torch


class ScoreTables:
    """Mixin (listed before the model base) for models that score <users[u], items[i]>.

    Subclasses implement ``compute_tables()`` -> (users [n_users, D], items [n_items, D]); it is called in
    evaluation mode (no dropout, no sampling). ``evaluation_tables()`` computes them once and keeps them until
    the model switches between training and evaluation, loads weights, or calls ``forget_tables()`` (after a
    change the weights do not show, such as a new attention matrix). ``predict`` [B] and ``full_sort_predict``
    [B, n_items] read the tables through ``score_output`` (identity by default).
    """

    _cached_tables: tuple[torch.Tensor, torch.Tensor] | None = None

    def compute_tables(self) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def evaluation_tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The tables of the whole graph without training-time noise, computed once per evaluation."""
        if self.training:  # computed in evaluation mode; switching back drops them again
            self.eval()
            try:
                return self.evaluation_tables()
            finally:
                self.train()
        if self._cached_tables is None:
            self._cached_tables = self.compute_tables()
        return self._cached_tables

    def forget_tables(self) -> None:
        self._cached_tables = None

    def train(self, mode: bool = True):
        self.forget_tables()
        return super().train(mode)

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        self.forget_tables()
        super()._load_from_state_dict(*args, **kwargs)

    def score_output(self, scores: torch.Tensor) -> torch.Tensor:
        """What ``predict`` / ``full_sort_predict`` return for raw inner products (e.g. a sigmoid)."""
        return scores

    def predict(self, interaction) -> torch.Tensor:
        users, items = self.evaluation_tables()
        return self.score_output((users[interaction[self.USER_ID]] * items[interaction[self.ITEM_ID]]).sum(-1))

    def full_sort_predict(self, interaction) -> torch.Tensor:
        users, items = self.evaluation_tables()
        return self.score_output(users[interaction[self.USER_ID]] @ items.T)
