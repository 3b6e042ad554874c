"""Per-epoch learning-rate schedules built from the ``lr_scheduler`` config key.

Every schedule steps once per epoch, after training (``plateau`` steps after each validation, on the
validation score). An optional linear warm-up multiplies the learning rate by a factor going from
``warmup_start_factor`` to 1 over ``warmup_epochs`` epochs; the named schedule starts after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch.optim import lr_scheduler as sched


class EpochSchedule:
    """One optimizer's schedule.

    Args:
        optimizer: the optimizer whose learning rates change.
        spec: the parsed ``lr_scheduler`` mapping.
        epochs: the run's ``epochs`` (the default period of cosine).
        bigger_is_better: the direction of the validation score (for plateau).
    """

    def __init__(
        self, optimizer: torch.optim.Optimizer, spec: Mapping[str, Any], epochs: int, bigger_is_better: bool
    ) -> None:
        self.name = spec["name"]
        self.warmup_epochs = spec["warmup_epochs"]
        self.epochs_done = 0
        self.warmup = None
        if self.warmup_epochs:
            self.warmup = sched.LinearLR(
                optimizer, start_factor=spec["warmup_start_factor"], end_factor=1.0, total_iters=self.warmup_epochs
            )
        self.main: Any = None
        if self.name == "step":
            self.main = sched.StepLR(optimizer, step_size=spec["step_size"], gamma=spec["gamma"])
        elif self.name == "multistep":
            self.main = sched.MultiStepLR(optimizer, milestones=spec["milestones"], gamma=spec["gamma"])
        elif self.name == "exponential":
            self.main = sched.ExponentialLR(optimizer, gamma=spec["gamma"])
        elif self.name == "cosine":
            period = spec["T_max"] or max(epochs - self.warmup_epochs, 1)
            self.main = sched.CosineAnnealingLR(optimizer, T_max=period, eta_min=spec["eta_min"])
        elif self.name == "plateau":
            self.main = sched.ReduceLROnPlateau(
                optimizer,
                mode="max" if bigger_is_better else "min",
                factor=spec["factor"],
                patience=spec["patience"],
                threshold=spec["threshold"],
                cooldown=spec["cooldown"],
                min_lr=spec["min_lr"],
            )

    def after_epoch(self) -> None:
        """Advance by one epoch (the warm-up first, then the epoch-based schedules)."""
        self.epochs_done += 1
        if self.warmup is not None and self.epochs_done <= self.warmup_epochs:
            self.warmup.step()
        elif self.main is not None and self.name != "plateau":
            self.main.step()

    def after_validation(self, score: float) -> None:
        """Feed a validation score to plateau (outside the warm-up)."""
        if self.name == "plateau" and self.epochs_done > self.warmup_epochs:
            self.main.step(score)

    def state_dict(self) -> dict[str, Any]:
        return {
            "epochs_done": self.epochs_done,
            "warmup": self.warmup.state_dict() if self.warmup is not None else None,
            "main": self.main.state_dict() if self.main is not None else None,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.epochs_done = state["epochs_done"]
        if self.warmup is not None and state["warmup"] is not None:
            self.warmup.load_state_dict(state["warmup"])
        if self.main is not None and state["main"] is not None:
            self.main.load_state_dict(state["main"])
