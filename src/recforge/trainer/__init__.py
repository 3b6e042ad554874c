"""Trainers: RecBole's AbstractTrainer / Trainer contract, events, objectives and checkpoints."""

from __future__ import annotations

from recforge.registry import get_trainer, register_trainer
from recforge.trainer.events import (
    Callback,
    Checkpoints,
    EarlyStopping,
    EpochHooks,
    EpochLog,
    ProgressBar,
    RunLog,
    RunSummary,
    SchedulerStep,
    TensorBoardLog,
)
from recforge.trainer.knowledge import KGATTrainer, KGTrainer, MKRTrainer
from recforge.trainer.ncl import NCLTrainer
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
from recforge.trainer.run_folder import RunFolder
from recforge.trainer.trainer import AbstractTrainer, Trainer
from recforge.trainer.tree import DecisionTreeTrainer, LightGBMTrainer, XGBoostTrainer

__all__ = [
    "AbstractTrainer",
    "After",
    "Always",
    "Before",
    "Callback",
    "Checkpoints",
    "Cycle",
    "DecisionTreeTrainer",
    "EarlyStopping",
    "EpochHook",
    "EpochHooks",
    "EpochLog",
    "Every",
    "KGATTrainer",
    "KGTrainer",
    "LightGBMTrainer",
    "MKRTrainer",
    "NCLTrainer",
    "Objective",
    "OptimizerSpec",
    "ProgressBar",
    "RunFolder",
    "RunLog",
    "RunSummary",
    "Schedule",
    "SchedulerStep",
    "TensorBoardLog",
    "Trainer",
    "XGBoostTrainer",
    "get_trainer",
    "register_trainer",
]
