"""Alternating optimisation as data: what is optimised, on which data, in which epochs.

An ``Objective`` is a loss (a model method name or a callable of a batch), a data source (the training loader or
one of its views, such as a knowledge-aware loader's "kg" triple batches) and the epochs it trains in (every
epoch, ``Every(n)`` or ``Cycle(period, start, stop)``); the parts of a tuple loss can start later
(``parts_from``, a warm-up). ``Trainer._train_epoch`` runs the objectives due in an epoch, one after another,
with the trainer's optimizer. RecBole's specialised trainers are objectives (and, for work between epochs,
callbacks) declared in their own classes: ``recforge.trainer.knowledge``, ``recforge.trainer.ncl``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class Every:
    """Every ``n`` epochs starting at ``offset``: offset, offset + n, offset + 2n, ..."""

    n: int
    offset: int = 0

    def due(self, epoch: int) -> bool:
        return epoch >= self.offset and (epoch - self.offset) % self.n == 0


@dataclass(frozen=True)
class Cycle:
    """Within each cycle of ``period`` epochs, the epochs ``start <= epoch % period < stop``."""

    period: int
    start: int
    stop: int

    def due(self, epoch: int) -> bool:
        return self.start <= epoch % self.period < self.stop


Schedule = Every | Cycle
LossFn = Callable[[Any], "torch.Tensor | tuple[torch.Tensor, ...]"]


@dataclass
class Objective:
    """One thing to optimise.

    Attributes:
        name: shown in logs and the loss history.
        loss: a model method name ("calculate_loss") or a callable ``batch -> loss or tuple of losses``.
        data: "train" (the training loader), the name of one of its views (``train_data.views[name]``) or a
            callable ``train_data -> iterable of batches``.
        schedule: the epochs it trains in (None: every epoch).
        parts_from: ``{index: epoch}``: part ``index`` of a tuple loss counts from ``epoch`` on (before, it is left
            out of the sum and reported as 0).
    """

    name: str
    loss: str | LossFn = "calculate_loss"
    data: str | Callable[[Any], Iterable[Any]] = "train"
    schedule: Schedule | None = None
    parts_from: Mapping[int, int] = field(default_factory=dict)

    def due(self, epoch: int) -> bool:
        return self.schedule is None or self.schedule.due(epoch)

    def parts_on(self, epoch: int) -> dict[int, bool]:
        """``{part index: counts in this epoch}`` for the parts with a start."""
        return {index: epoch >= first for index, first in self.parts_from.items()}

    def loss_fn(self, model: torch.nn.Module) -> LossFn:
        return getattr(model, self.loss) if isinstance(self.loss, str) else self.loss

    def loader(self, train_data: Any) -> Iterable[Any]:
        if callable(self.data):
            return self.data(train_data)
        if self.data == "train":
            return train_data
        views = getattr(train_data, "views", None)
        if not views or self.data not in views:
            raise KeyError(
                f"objective {self.name!r} wants data {self.data!r}, which the training loader does not "
                f"provide (views: {sorted(views or {})})"
            )
        return views[self.data]
