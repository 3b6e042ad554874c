"""The training step: optimizers, objectives run over their data, gradient accumulation, mixed precision.

``Optimization`` is a part of ``Trainer`` (a mixin): it owns ``optimizers`` and ``schedulers`` and runs one
epoch's objectives. One optimisation step, for every batch (or every ``gradient_accumulation_steps`` batches)::

    for each objective of the group:  autocast forward -> scaler.scale(loss).backward()
                                      -> [step due] scaler.unscale_ -> clip -> scaler.step -> zero_grad
    scaler.update()                   once per step, after every optimizer stepped (torch's multi-optimizer rule)

so clipping sees true gradients and the loss scale moves once per step whatever the number of optimizers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from recforge.errors import ConfigError, TrainingError
from recforge.trainer import distributed
from recforge.trainer.objectives import Objective, OptimizerSpec
from recforge.trainer.optim import build_optimizer
from recforge.trainer.schedulers import EpochSchedule
from recforge.utils.progress import progress

Loss = float | tuple[float, ...]


class Optimization:
    """Optimizers and the training step of a ``Trainer`` (see the module docstring)."""

    # -- optimizers --------------------------------------------------------------------------------
    def _build_optimizers(self, specs: list[OptimizerSpec]) -> None:
        """Build one optimizer per spec, and "main" over every parameter no spec claims when an objective
        needs it. When the specs claim every parameter, objectives on "main" step all optimizers instead."""
        claimed: set[int] = set()
        for spec in specs:
            params = list(spec.params(self.model)) if spec.params is not None else list(self.model.parameters())
            claimed.update(id(p) for p in params)
            self.optimizers[spec.name] = self._build_optimizer(
                params=params, learner=spec.learner, learning_rate=spec.learning_rate, weight_decay=spec.weight_decay
            )
        needs_main = any("main" in _names(o.optimizer) for o in self.objectives)
        rest = [p for p in self.model.parameters() if id(p) not in claimed and p.requires_grad]
        if needs_main and "main" not in self.optimizers and (rest or not specs):
            self.optimizers["main"] = self._build_optimizer(params=rest)
        known = set(self.optimizers) | ({"main"} if specs else set())
        missing = {name for o in self.objectives for name in _names(o.optimizer)} - known
        if missing:
            raise ConfigError(f"objectives refer to optimizers {sorted(missing)} that no OptimizerSpec defines")
        for name, optimizer in self.optimizers.items():
            self._schedule(name, optimizer)

    def _schedule(self, name: str, optimizer: torch.optim.Optimizer) -> None:
        if self.config["lr_scheduler"]:
            self.schedulers[name] = EpochSchedule(
                optimizer, self.config["lr_scheduler"], self.epochs, self.valid_metric_bigger
            )

    def _build_optimizer(self, **kwargs: Any) -> torch.optim.Optimizer:
        """RecBole's hook: an optimizer from ``params`` (parameters or param groups; default: the model's),
        ``learner``, ``learning_rate`` and ``weight_decay`` (default: the config's). Override it for
        layer-specific learning rates; every optimizer of the trainer is built here."""
        params = kwargs.get("params")
        learner = kwargs.get("learner")
        learning_rate = kwargs.get("learning_rate")
        weight_decay = kwargs.get("weight_decay")
        return build_optimizer(
            self.model.parameters() if params is None else params,
            learner or self.config["learner"],
            self.config["learning_rate"] if learning_rate is None else learning_rate,
            self.config["weight_decay"] if weight_decay is None else weight_decay,
        )

    @property
    def optimizer(self) -> torch.optim.Optimizer | None:
        """The "main" optimizer (RecBole's attribute; assigning it replaces "main" and its schedule)."""
        return self.optimizers.get("main")

    @optimizer.setter
    def optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizers["main"] = optimizer
        self.schedulers.pop("main", None)
        self._schedule("main", optimizer)

    def _step_optimizers(self, objective: Objective) -> list[str]:
        """The optimizers an objective steps: its own, or all of them when it names "main" and the optimizer
        specs left "main" nothing to own."""
        names = [n for n in _names(objective.optimizer) if n in self.optimizers]
        if not names and "main" in _names(objective.optimizer):
            return list(self.optimizers)
        return names

    # -- one epoch's objectives --------------------------------------------------------------------
    def _run_group(self, group: list[Objective], train_data, epoch_idx: int, show_progress: bool) -> dict[str, Loss]:
        """Run objectives over the batches of the first one's data, interleaved per batch."""
        loader = group[0].loader(train_data)
        limit = min((o.steps for o in group if o.steps is not None), default=None)
        n_batches = len(loader) if hasattr(loader, "__len__") else None
        if limit is not None and n_batches is not None:
            n_batches = min(n_batches, limit)
        loss_fns = [o.loss_fn(self.model) for o in group]
        reductions = [self._reduction(o) for o in group]
        part_masks = [{index: s.due(epoch_idx) for index, s in o.parts.items()} for o in group]
        stepping = [self._step_optimizers(o) for o in group]
        totals: list[Loss | None] = [None] * len(group)
        pending: set[str] = set()  # optimizers holding gradients that have not been stepped yet
        for name in {n for names in stepping for n in names}:
            self.optimizers[name].zero_grad(set_to_none=True)
        label = f"train {epoch_idx:>3}" + (f" {group[0].name}" if len(self.objectives) > 1 else "")
        for batch_idx, batch in enumerate(progress(loader, show_progress, label)):
            if limit is not None and batch_idx >= limit:
                break
            batch = batch.to(self.device, non_blocking=self.device.type == "cuda")  # pinned on CUDA
            divisor = self._accumulation_divisor(batch_idx, n_batches)
            step_now = self._step_due(batch_idx, n_batches)
            for i, objective in enumerate(group):
                self.set_reduce_hook()  # distributed: this backward's gradients are averaged over the ranks
                with self.precision.autocast():
                    losses = loss_fns[i](batch)
                if distributed.is_distributed():  # this rank's slice of the batch: weighted as one process sums
                    losses = _weighted(losses, reductions[i], getattr(batch, "share", 1.0))
                loss, values = self._combine(losses, part_masks[i])
                loss = loss + self.sync_grad_loss()
                self._check_finite(values, epoch_idx, batch_idx, objective.name)
                self._backward(loss / divisor if divisor > 1 else loss)
                pending.update(stepping[i])
                if step_now:
                    for name in stepping[i]:
                        self._optimizer_step(name)
                        pending.discard(name)
                totals[i] = values if totals[i] is None else _add(totals[i], values)
            if step_now:
                self._update_scale()
        if pending:  # a loader of unknown length ended inside an accumulation group
            for name in sorted(pending):
                self._optimizer_step(name)
            self._update_scale()
        if distributed.is_distributed():  # every rank's share: the losses of one process, up to float rounding
            totals = distributed.average_losses(totals, self.device)
        return {o.name: (0.0 if totals[i] is None else totals[i]) for i, o in enumerate(group)}

    def _reduction(self, objective: Objective) -> str | tuple[str, ...]:
        """How the objective's loss is reduced over a batch's rows (the model's ``loss_reductions``)."""
        declared = getattr(self.model, "loss_reductions", {})
        return declared.get(objective.loss, "mean") if isinstance(objective.loss, str) else "mean"

    @staticmethod
    def _combine(losses, mask: dict[int, bool]) -> tuple[torch.Tensor, Loss]:
        """The loss to minimise and the values to report; parts switched off by ``mask`` count as 0."""
        if not isinstance(losses, tuple):
            return losses, losses.item()
        n = len(losses)
        active = [mask.get(i, mask.get(i - n, True)) for i in range(n)]
        loss = sum(part for part, on in zip(losses, active, strict=True) if on)
        return loss, tuple(part.item() if on else 0.0 for part, on in zip(losses, active, strict=True))

    def _accumulation_divisor(self, batch_idx: int, n_batches: int | None) -> int:
        """How many batches share the optimizer step that ``batch_idx`` belongs to."""
        if self.accumulation == 1:
            return 1
        if n_batches is None:
            return self.accumulation
        start = batch_idx - batch_idx % self.accumulation
        return min(self.accumulation, n_batches - start)

    def _step_due(self, batch_idx: int, n_batches: int | None) -> bool:
        return (batch_idx + 1) % self.accumulation == 0 or (n_batches is not None and batch_idx + 1 == n_batches)

    # -- the step ----------------------------------------------------------------------------------
    def _backward(self, loss: torch.Tensor) -> None:
        """Backward through the (scaled) loss."""
        self.precision.scaler.scale(loss).backward()

    def _optimizer_step(self, name: str) -> None:
        """Unscale, clip and step optimizer ``name``, then clear its gradients (the scale is updated after every
        optimizer of the step has stepped, in ``_update_scale``)."""
        optimizer = self.optimizers[name]
        scaler = self.precision.scaler
        if distributed.is_distributed():  # sparse embedding gradients are averaged here, DDP averaged the rest
            if not hasattr(self, "_sparse_ids"):
                self._sparse_ids = {id(p) for _, p in distributed.sparse_parameters(self.model)}
            params = [p for group in optimizer.param_groups for p in group["params"] if id(p) in self._sparse_ids]
            if params:
                distributed.average_sparse_gradients(params)
        if self.clip_grad_norm:
            scaler.unscale_(optimizer)
            params = [p for group in optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, **self.clip_grad_norm)
        scaler.step(optimizer)
        optimizer.zero_grad(set_to_none=True)

    def _update_scale(self) -> None:
        """Update the GradScaler's scale once per optimisation step."""
        self.precision.scaler.update()

    def _check_nan(self, loss: torch.Tensor | float) -> None:
        """RecBole's check: a NaN loss stops training with a TrainingError."""
        value = float(loss.item() if isinstance(loss, torch.Tensor) else loss)
        if math.isnan(value):
            raise TrainingError("the training loss is NaN; lower learning_rate or set clip_grad_norm")

    @staticmethod
    def _check_finite(values: Loss, epoch_idx: int, batch_idx: int, name: str) -> None:
        parts = values if isinstance(values, tuple) else (values,)
        if not all(math.isfinite(v) for v in parts):
            raise TrainingError(
                f"the training loss is {values} at epoch {epoch_idx}, batch {batch_idx} (objective {name}); lower "
                "learning_rate, set clip_grad_norm, or check the data for extreme values"
            )


def _names(optimizer: str | Iterable[str]) -> tuple[str, ...]:
    return (optimizer,) if isinstance(optimizer, str) else tuple(optimizer)


def _weighted(losses, reduction: str | tuple[str, ...], share: float):
    """A rank's losses weighted so that DDP's mean over the ranks gives one process's losses: a mean over the
    slice's rows times its ``share`` (rows x ranks / batch rows), a sum over them times the number of ranks."""
    world = distributed.world_size()
    if not isinstance(losses, tuple):
        return losses * (world if reduction == "sum" else share)
    kinds = reduction if isinstance(reduction, tuple) else (reduction,) * len(losses)
    return tuple(part * (world if kind == "sum" else share) for part, kind in zip(losses, kinds, strict=True))


def _add(total: Loss, values: Loss) -> Loss:
    if isinstance(total, tuple):
        return tuple(a + b for a, b in zip(total, values, strict=True))
    return total + values


def groups_of(objectives: list[Objective]) -> list[list[Objective]]:
    """Objectives in order; consecutive ones with the same non-empty group form one interleaved group."""
    groups: list[list[Objective]] = []
    for objective in objectives:
        if objective.group is not None and groups and groups[-1][0].group == objective.group:
            groups[-1].append(objective)
        else:
            groups.append([objective])
    return groups
