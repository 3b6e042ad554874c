"""Alternating optimisation as data: what is optimised, on which data, when, and by which optimizer.

An ``Objective`` is a loss (a model method name or a callable of a batch) + a data source + a ``Schedule``
(the epochs it runs in) + the name of the optimizer that steps on it (+ optionally a batch budget, schedules
for individual parts of a tuple loss, and an interleaving group). ``Trainer._train_epoch`` runs the objectives
that are due, in order; objectives sharing a ``group`` run interleaved batch by batch (adversarial training),
each with its own forward pass, so no graph is backpropagated twice.

The shapes of RecBole's specialised trainers, as objectives (see ``knowledge_objectives`` etc.):

- KGTrainer: recommendation loss for ``train_rec_step`` epochs, then KG loss for ``train_kg_step`` epochs
  (``Cycle``), or both together when the steps are not set;
- MKRTrainer: recommendation loss every epoch, KG loss every ``kge_interval`` epochs (``Every``);
- KGATTrainer: recommendation then KG loss every epoch, then an attention refresh without gradients
  (an ``EpochHook``);
- NCLTrainer: a clustering E-step every ``m_step`` epochs (an ``EpochHook``) and the prototype loss only after
  ``warm_up_step`` epochs (a part schedule ``After``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

# -- schedules -------------------------------------------------------------------------------------


class Schedule:
    """When something is due: ``due(epoch) -> bool`` (epochs count from 0)."""

    def due(self, epoch: int) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class Always(Schedule):
    def due(self, epoch: int) -> bool:
        return True


@dataclass(frozen=True)
class Every(Schedule):
    """Every ``n`` epochs starting at ``offset``: offset, offset + n, offset + 2n, ..."""

    n: int
    offset: int = 0

    def due(self, epoch: int) -> bool:
        return epoch >= self.offset and (epoch - self.offset) % self.n == 0


@dataclass(frozen=True)
class Cycle(Schedule):
    """Within each cycle of ``period`` epochs, the epochs ``start <= epoch % period < stop``."""

    period: int
    start: int
    stop: int

    def due(self, epoch: int) -> bool:
        return self.start <= epoch % self.period < self.stop


@dataclass(frozen=True)
class After(Schedule):
    """From epoch ``epoch`` on (a warm-up of ``epoch`` epochs comes first)."""

    epoch: int

    def due(self, epoch: int) -> bool:
        return epoch >= self.epoch


@dataclass(frozen=True)
class Before(Schedule):
    """Only during the first ``epoch`` epochs."""

    epoch: int

    def due(self, epoch: int) -> bool:
        return epoch < self.epoch


# -- objectives and optimizers ---------------------------------------------------------------------

LossFn = Callable[[Any], "torch.Tensor | tuple[torch.Tensor, ...]"]


@dataclass
class Objective:
    """One thing to optimise.

    Attributes:
        name: shown in logs and the loss history.
        loss: a model method name ("calculate_loss") or a callable ``batch -> loss or tuple of losses``.
        data: "train" (the training loader), another name (``train_data.views[name]``) or a callable
            ``train_data -> iterable of batches``.
        schedule: the epochs in which the objective runs.
        optimizer: the name of the optimizer that steps on its gradients ("main" by default; when optimizer specs
            own every parameter, "main" means all of them), or several names.
        steps: at most this many batches per epoch (None: a full pass).
        parts: schedules of individual parts of a tuple loss, by index; a part that is not due is left out of
            the sum (and reported as 0).
        group: objectives with the same group run interleaved, batch by batch, over the first one's data.
    """

    name: str
    loss: str | LossFn = "calculate_loss"
    data: str | Callable[[Any], Iterable[Any]] = "train"
    schedule: Schedule = field(default_factory=Always)
    optimizer: str | tuple[str, ...] = "main"
    steps: int | None = None
    parts: Mapping[int, Schedule] = field(default_factory=dict)
    group: str | None = None

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


@dataclass
class OptimizerSpec:
    """An optimizer over part of the model.

    Attributes:
        name: referred to by ``Objective.optimizer``.
        params: ``model -> parameters`` it owns (None: every parameter no other spec owns).
        learner, learning_rate, weight_decay: override the config's values when given.
    """

    name: str
    params: Callable[[torch.nn.Module], Iterable[torch.nn.Parameter]] | None = None
    learner: str | None = None
    learning_rate: float | None = None
    weight_decay: float | None = None


@dataclass
class EpochHook:
    """Run ``fn(trainer, epoch)`` at the start or end of the training part of due epochs.

    With ``no_grad`` (the default) it runs under ``torch.no_grad()`` with the model in eval mode.
    """

    fn: Callable[[Any, int], None]
    when: str = "end"
    schedule: Schedule = field(default_factory=Always)
    no_grad: bool = True


# -- the shapes of RecBole's specialised trainers ---------------------------------------------------


def knowledge_objectives(train_rec_step: int | None, train_kg_step: int | None, merged: bool = True) -> list[Objective]:
    """KGTrainer: alternate ``train_rec_step`` recommendation epochs (interaction batches) and ``train_kg_step`` KG
    epochs (triple batches), or, when either is None, the recommendation loss every epoch over interaction batches
    merged with triple batches ("rskg"; plain interaction batches, "rs", when ``merged`` is False because the
    model's loss reads no triples)."""
    if train_rec_step is None or train_kg_step is None:
        return [Objective("rec+kg" if merged else "rec", loss="calculate_loss", data="rskg" if merged else "rs")]
    period = train_rec_step + train_kg_step
    return [
        Objective("rec", loss="calculate_loss", data="rs", schedule=Cycle(period, 0, train_rec_step)),
        Objective("kg", loss="calculate_kg_loss", data="kg", schedule=Cycle(period, train_rec_step, period)),
    ]


def mkr_objectives(kge_interval: int) -> list[Objective]:
    """MKRTrainer: the recommendation loss every epoch, the KG loss every ``kge_interval`` epochs."""
    return [
        Objective("rec", loss="calculate_rs_loss", data="rs"),
        Objective("kg", loss="calculate_kg_loss", data="kg", schedule=Every(kge_interval)),
    ]


def kgat_plan() -> tuple[list[Objective], list[EpochHook]]:
    """KGATTrainer: recommendation then KG loss each epoch, then refresh the attention without gradients."""
    objectives = [
        Objective("rec", loss="calculate_loss", data="rs"),
        Objective("kg", loss="calculate_kg_loss", data="kg"),
    ]
    return objectives, [EpochHook(lambda trainer, epoch: trainer.model.update_attentive_A(), when="end")]


def ncl_plan(m_step: int, warm_up_step: int, proto_part: int = -1) -> tuple[list[Objective], list[EpochHook]]:
    """NCLTrainer: an E-step (seeded by the config's seed + the epoch) before every ``m_step``-th epoch from epoch 0;
    the prototype loss (part ``proto_part`` of the loss tuple, the last by default) from epoch ``warm_up_step`` on."""
    objectives = [Objective("loss", loss="calculate_loss", parts={proto_part: After(warm_up_step)})]

    def e_step(trainer: Any, epoch: int) -> None:
        trainer.model.e_step(seed=trainer.config["seed"] + epoch)

    return objectives, [EpochHook(e_step, when="start", schedule=Every(m_step))]
