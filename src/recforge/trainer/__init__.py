"""Trainers: RecBole's AbstractTrainer / Trainer contract, callbacks, objectives and checkpoints."""

from __future__ import annotations

from recforge.registry import get_trainer, register_trainer
from recforge.trainer.callbacks import Callback, Checkpoints, EarlyStopping, ModelEpochStart, SchedulerStep
from recforge.trainer.knowledge import KGATTrainer, KGTrainer, MKRTrainer
from recforge.trainer.ncl import NCLTrainer
from recforge.trainer.objectives import Cycle, Every, Objective, Schedule
from recforge.trainer.pretrain import PretrainTrainer, S3RecTrainer
from recforge.trainer.progress import TrainingProgress
from recforge.trainer.run_folder import RunFolder
from recforge.trainer.run_logs import EpochLog, ProgressBar, RunLog, RunSummary, TensorBoardLog
from recforge.trainer.trainer import AbstractTrainer, Trainer
from recforge.trainer.tree import DecisionTreeTrainer, LightGBMTrainer, XGBoostTrainer

__all__ = [
    "AbstractTrainer",
    "Callback",
    "Checkpoints",
    "Cycle",
    "DecisionTreeTrainer",
    "EarlyStopping",
    "EpochLog",
    "Every",
    "KGATTrainer",
    "KGTrainer",
    "LightGBMTrainer",
    "MKRTrainer",
    "ModelEpochStart",
    "NCLTrainer",
    "Objective",
    "PretrainTrainer",
    "ProgressBar",
    "RunFolder",
    "RunLog",
    "RunSummary",
    "S3RecTrainer",
    "Schedule",
    "SchedulerStep",
    "TensorBoardLog",
    "Trainer",
    "TrainingProgress",
    "XGBoostTrainer",
    "get_trainer",
    "register_trainer",
]
