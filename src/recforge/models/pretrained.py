"""Weights of an earlier training stage (a pretraining stage's file, ``pre_model_path``) loaded into a model."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from recforge.errors import CheckpointError, ConfigError
from recforge.utils.checkpoint_file import load_checkpoint

logger = logging.getLogger("recforge")


def load_pretrained(
    model: torch.nn.Module, path: str | Path, key: str = "pre_model_path", dataset: str | None = None
) -> dict[str, Any]:
    """Load the weights of a pretraining stage's file (or any recforge checkpoint of the same model) into
    ``model``; returns the checkpoint. A missing file, another model's file, one of another size or (``dataset``
    given) one pretrained on another data set, whose item ids mean other items, is a clear error naming the config
    key and the file."""
    if not str(path):
        raise ConfigError(
            f"config key {key!r} is empty: the fine-tuning stage of {type(model).__name__} needs the file a "
            "pretraining stage saved (train_stage: pretrain writes <checkpoint_dir>/<model>-<dataset>-<epoch>.pth)"
        )
    if not Path(path).expanduser().is_file():
        raise ConfigError(
            f"config key {key!r}: {path} does not exist (a pretraining stage saves "
            "<checkpoint_dir>/<model>-<dataset>-<epoch>.pth; run it first, or correct the path)"
        )
    try:
        state = load_checkpoint(Path(path).expanduser())
    except CheckpointError as exc:
        raise ConfigError(f"config key {key!r}: {exc}") from None
    expected = type(model).__name__
    if state.get("model_name") != expected:
        raise ConfigError(
            f"config key {key!r}: {path} holds a {state.get('model_name')} model, not a pretrained {expected}"
        )
    trained_on = (state.get("config") or {}).get("dataset")
    if dataset is not None and trained_on is not None and trained_on != dataset:
        raise ConfigError(
            f"config key {key!r}: {path} was pretrained on data set {trained_on!r}, not {dataset!r}: its item ids "
            "would name other items; pretrain on this data set"
        )
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        first = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line), str(exc))
        raise ConfigError(
            f"config key {key!r}: {path} does not fit this {expected} ({first}); it was pretrained on another "
            "data set or with other hyper-parameters"
        ) from None
    logger.info("loaded the pretrained weights of %s (epoch %s)", path, int(state.get("epoch", -1)) + 1)
    return state
