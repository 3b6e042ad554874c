"""Rebuilding everything a checkpoint was trained with (RecBole's ``load_data_and_model``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from recforge.config import Config
from recforge.config.machine import machine_independent
from recforge.data import create_dataset, data_preparation
from recforge.models.building import create_model
from recforge.registry import get_model_class
from recforge.trainer.checkpoint import load_checkpoint, load_model_state
from recforge.utils.seed import init_seed


def load_data_and_model(model_file: str | Path, config_dict: Mapping[str, Any] | None = None):
    """Rebuild everything a checkpoint was trained with (RecBole's ``load_data_and_model``).

    ``config_dict`` overrides saved keys (e.g. ``data_path`` on another machine). Returns
    ``(config, model, dataset, train_data, valid_data, test_data)`` with the checkpoint's weights loaded.
    """
    state = load_checkpoint(model_file)
    config = Config(config_dict=config_dict, cmd_args=[], base_config=machine_independent(state["config"]))
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"], config["reproducibility"])
    model = create_model(get_model_class(config["model"]), config, train_data.dataset)
    load_model_state(model, state, model_file)
    model.to(config["device"])
    return config, model, dataset, train_data, valid_data, test_data
