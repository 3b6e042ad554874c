"""Parameter initialisations applied with ``model.apply(...)`` (RecBole's ``recbole.model.init``)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def _initialise(module: nn.Module, init: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """``init`` on embedding and linear weights, zero linear biases."""
    if isinstance(module, (nn.Embedding, nn.Linear)):
        init(module.weight.data)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.constant_(module.bias.data, 0)


def xavier_normal_initialization(module: nn.Module) -> None:
    """RecBole's default init: Xavier-normal embeddings and linear weights, zero biases."""
    _initialise(module, nn.init.xavier_normal_)


def xavier_uniform_initialization(module: nn.Module) -> None:
    """Xavier-uniform embeddings and linear weights, zero biases."""
    _initialise(module, nn.init.xavier_uniform_)
