"""The losses of a training batch: combined from a model's parts, weighted for several processes, checked, summed
over an epoch (``Trainer._run_objective`` uses them; pure functions)."""

from __future__ import annotations

import math

import torch

from recforge.errors import TrainingError
from recforge.trainer import distributed

Loss = float | tuple[float, ...]


def combine(losses, mask: dict[int, bool]) -> tuple[torch.Tensor, Loss]:
    """The loss to minimise and the values to report; parts switched off by ``mask`` count as 0."""
    if not isinstance(losses, tuple):
        return losses, losses.item()
    active = [mask.get(i, True) for i in range(len(losses))]
    loss = sum(part for part, on in zip(losses, active, strict=True) if on)
    return loss, tuple(part.item() if on else 0.0 for part, on in zip(losses, active, strict=True))


def weighted(losses, reduction: str | tuple[str, ...], share: float):
    """A rank's losses weighted so that DDP's mean over the ranks gives one process's losses: a mean over the
    slice's rows times its ``share`` (rows x ranks / batch rows), a sum over them times the number of ranks."""
    world = distributed.world_size()
    if not isinstance(losses, tuple):
        return losses * (world if reduction == "sum" else share)
    kinds = reduction if isinstance(reduction, tuple) else (reduction,) * len(losses)
    return tuple(part * (world if kind == "sum" else share) for part, kind in zip(losses, kinds, strict=True))


def group_size(batch_idx: int, n_batches: int | None, accumulation: int) -> int:
    """How many batches share the optimizer step that ``batch_idx`` belongs to (its loss is divided by that)."""
    if accumulation == 1 or n_batches is None:
        return accumulation
    start = batch_idx - batch_idx % accumulation
    return min(accumulation, n_batches - start)


def add(total: Loss, values: Loss) -> Loss:
    return tuple(a + b for a, b in zip(total, values, strict=True)) if isinstance(total, tuple) else total + values


def check_finite(values: Loss, where: str) -> None:
    parts = values if isinstance(values, tuple) else (values,)
    if not all(math.isfinite(v) for v in parts):
        raise TrainingError(
            f"the training loss is {values} at epoch {where}; lower learning_rate, set clip_grad_norm, or check the "
            "data for extreme values"
        )


def check_nan(loss: torch.Tensor | float) -> None:
    """RecBole's check: a NaN loss stops training with a TrainingError."""
    if math.isnan(float(loss.item() if isinstance(loss, torch.Tensor) else loss)):
        raise TrainingError("the training loss is NaN; lower learning_rate or set clip_grad_norm")


def reduction_of(model: torch.nn.Module, loss: object) -> str | tuple[str, ...]:
    """How the loss ``loss`` (a method name) of ``model`` is reduced over a batch's rows: the model's
    ``loss_reductions``, "mean" by default and for callables."""
    declared = getattr(model, "loss_reductions", {})
    return declared.get(loss, "mean") if isinstance(loss, str) else "mean"
