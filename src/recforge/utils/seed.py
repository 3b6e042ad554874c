"""Seeding every random number generator a run uses."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def init_seed(seed: int, reproducibility: bool = True) -> None:
    """Seed python, numpy and torch (all devices); with ``reproducibility`` also make cuDNN deterministic."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if reproducibility:
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    else:
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.deterministic = False
