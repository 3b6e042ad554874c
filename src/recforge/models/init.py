"""Parameter initialisations applied with ``model.apply(...)`` (RecBole's ``recbole.model.init``)."""

from __future__ import annotations

from torch import nn


def xavier_normal_initialization(module: nn.Module) -> None:
    """RecBole's default init: Xavier-normal embeddings and linear weights, zero biases."""
    if isinstance(module, nn.Embedding):
        nn.init.xavier_normal_(module.weight.data)
    elif isinstance(module, nn.Linear):
        nn.init.xavier_normal_(module.weight.data)
        if module.bias is not None:
            nn.init.constant_(module.bias.data, 0)


def xavier_uniform_initialization(module: nn.Module) -> None:
    """Xavier-uniform embeddings and linear weights, zero biases."""
    if isinstance(module, nn.Embedding):
        nn.init.xavier_uniform_(module.weight.data)
    elif isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight.data)
        if module.bias is not None:
            nn.init.constant_(module.bias.data, 0)
