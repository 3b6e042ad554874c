"""Trainers: RecBole's AbstractTrainer / Trainer contract, events, objectives and checkpoints."""

from __future__ import annotations

from recforge.errors import ConfigError, did_you_mean
from recforge.trainer.events import (
    Callback,
    Checkpoints,
    EarlyStopping,
    EpochHooks,
    EpochLog,
    ProgressBar,
    RunLog,
    SchedulerStep,
    TensorBoardLog,
)
from recforge.trainer.objectives import (
    After,
    Always,
    Before,
    Cycle,
    EpochHook,
    Every,
    Objective,
    OptimizerSpec,
    Schedule,
)
from recforge.trainer.trainer import AbstractTrainer, Trainer

TRAINERS: dict[str, type[AbstractTrainer]] = {"Trainer": Trainer}


def get_trainer(model_type=None, model_name: str | None = None) -> type[AbstractTrainer]:
    """The trainer class for a model: ``get_trainer(model_class)``, or RecBole's ``get_trainer(type, name)``."""
    from recforge.models.registry import get_model_class

    model_class = model_type if isinstance(model_type, type) else get_model_class(model_name)
    name = getattr(model_class, "trainer", "Trainer")
    if name not in TRAINERS:
        raise ConfigError(
            f"{model_class.__name__} asks for trainer {name!r}, which does not exist{did_you_mean(name, TRAINERS)}"
        )
    return TRAINERS[name]


__all__ = [
    "AbstractTrainer",
    "After",
    "Always",
    "Before",
    "Callback",
    "Checkpoints",
    "Cycle",
    "EarlyStopping",
    "EpochHook",
    "EpochHooks",
    "EpochLog",
    "Every",
    "Objective",
    "OptimizerSpec",
    "ProgressBar",
    "RunLog",
    "Schedule",
    "SchedulerStep",
    "TensorBoardLog",
    "Trainer",
    "get_trainer",
]
