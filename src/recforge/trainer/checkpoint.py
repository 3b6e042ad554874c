"""Checkpoint files: written atomically, read safely (``torch.load(weights_only=True)``), checked on load; and the
complete training state of a ``Trainer`` they hold (``training_state`` / ``restore_training_state``).

A checkpoint is a dict of plain values and tensors only (no pickled classes), so it loads with
``weights_only=True``::

    format, version          "recforge.checkpoint", 1
    model_name               class name of the model
    config                   the resolved config as plain values
    epoch                    the last completed epoch (-1 before the first)
    model                    model.state_dict()
    optimizers, schedulers   {name: state_dict}
    scaler                   GradScaler state or None
    trainer                  the loop's counters (``TrainingProgress``): epoch, early stopping, best result, losses
    loaders, rng, callbacks  states that make a resumed run continue exactly
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from recforge.config.machine import PROCESS_KEYS, processes
from recforge.errors import CheckpointError
from recforge.trainer.callbacks import callback_keys, stable_callback_keys
from recforge.utils.checkpoint_file import FORMAT as FORMAT
from recforge.utils.checkpoint_file import VERSION as VERSION
from recforge.utils.checkpoint_file import load_checkpoint as load_checkpoint
from recforge.utils.checkpoint_file import save_checkpoint as save_checkpoint
from recforge.utils.rng import capture_rng_state, restore_rng_state

logger = logging.getLogger("recforge")


def check_model(state: dict[str, Any], model: torch.nn.Module, path: str | Path) -> None:
    """Raise CheckpointError unless ``state`` was saved from a model of ``model``'s class."""
    expected = type(model).__name__
    if state.get("model_name") != expected:
        raise CheckpointError(
            f"checkpoint {path} holds a {state.get('model_name')} model, but the model to load into is {expected}"
        )


def load_model_state(model: torch.nn.Module, state: dict[str, Any], path: str | Path) -> None:
    """Load ``state["model"]`` into ``model``; shape mismatches (another data set) become a CheckpointError."""
    check_model(state, model, path)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        first = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line), str(exc))
        raise CheckpointError(
            f"checkpoint {path} does not fit this {type(model).__name__} ({first}); was it trained on another "
            "data set or with other hyper-parameters?"
        ) from None


# -- the training state of a Trainer ---------------------------------------------------------------------------

# Config keys that may differ on resume without changing the run.
RESUME_NEUTRAL_KEYS = frozenset(
    {
        "epochs",
        "show_progress",
        "state",
        "checkpoint_dir",
        "data_path",
        "device",
        "use_gpu",
        "gpu_id",
        "eval_batch_size",
        "metric_decimal_place",
        "loss_decimal_place",
        "tensorboard",
        "data_cache",
        "ip",
        "port",
        "offset",
        *PROCESS_KEYS,  # said apart: another number of processes changes the summation order only
    }
)


def training_state(trainer: Any, epoch: int) -> dict[str, Any]:
    """The complete training state of ``trainer`` after ``epoch`` (the layout in the module docstring)."""
    to_dict = getattr(trainer.config, "to_dict", None)
    callbacks = trainer.callbacks
    return {
        "model_name": type(trainer.model).__name__,
        "config": to_dict() if to_dict else dict(trainer.config),
        "epoch": epoch,
        "model": trainer.model.state_dict(),
        "optimizers": {name: opt.state_dict() for name, opt in trainer.optimizers.items()},
        "schedulers": {name: s.state_dict() for name, s in trainer.schedulers.items()},
        "scaler": trainer.precision.scaler.state_dict(),
        "trainer": trainer.progress.state_dict(),
        "loaders": {name: loader.state_dict() for name, loader in stateful_loaders(trainer).items()},
        "rng": capture_rng_state(),
        "callbacks": {key: c.state_dict() for key, c in zip(callback_keys(callbacks), callbacks, strict=True)},
    }


def restore_training_state(trainer: Any, state: dict[str, Any], path: str | Path) -> None:
    """Give ``trainer`` the training state of a checkpoint ``state`` read from ``path`` (its model weights are
    loaded already): optimizers, schedules, scaler, counters, callbacks, the loaders' generators (applied when fit
    attaches the loaders) and the random generators."""
    warn_config_changes(trainer.config, state.get("config", {}), path)
    for name, optimizer_state in state.get("optimizers", {}).items():
        if name in trainer.optimizers:
            trainer.optimizers[name].load_state_dict(optimizer_state)
    for name, scheduler_state in state.get("schedulers", {}).items():
        if name in trainer.schedulers:
            trainer.schedulers[name].load_state_dict(scheduler_state)
    if state.get("scaler"):
        trainer.precision.scaler.load_state_dict(state["scaler"])
    trainer.progress.load_state_dict(state.get("trainer", {}), int(state.get("epoch", -1)))
    saved_callbacks = stable_callback_keys(state.get("callbacks", {}))
    for key, callback in zip(callback_keys(trainer.callbacks), trainer.callbacks, strict=True):
        if key in saved_callbacks:
            callback.load_state_dict(saved_callbacks.pop(key))
    trainer.unclaimed_callback_states = saved_callbacks  # for callbacks added later (add_callback)
    trainer.pending_loader_state = state.get("loaders") or None
    if state.get("rng"):
        restore_rng_state(state["rng"])


def warn_config_changes(config: Any, saved: Mapping[str, Any], path: str | Path) -> None:
    """Name, in a warning, every key whose value differs from the checkpoint's and changes the run; say what
    another number of processes does."""
    to_dict = getattr(config, "to_dict", None)
    current = to_dict() if to_dict else dict(config)
    changed = sorted(
        k for k in set(saved) | set(current) if k not in RESUME_NEUTRAL_KEYS and saved.get(k) != current.get(k)
    )
    if changed:
        details = "; ".join(f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in changed)
        logger.warning("resuming %s with a different config, so the run will not match the original: %s", path, details)
    if saved and processes(saved) != processes(current):
        logger.warning(
            "resuming %s, trained with %d process(es), with %d: the same batches, summed in another order, so "
            "weights and losses follow the original within float rounding (1e-6), not bit for bit",
            path,
            processes(saved),
            processes(current),
        )


def attach_loaders(trainer: Any, train_data: Any) -> None:
    """Give ``trainer`` the training loader of a fit: pinned memory on CUDA, a rank's slices with several processes,
    and the generators' states of a resumed checkpoint."""
    from recforge.trainer import distributed

    trainer.train_data = train_data
    if hasattr(train_data, "pin_memory"):
        train_data.pin_memory = trainer.device.type == "cuda"
    if distributed.is_distributed() and hasattr(train_data, "shard"):
        train_data.shard(distributed.rank(), distributed.world_size())
    if trainer.pending_loader_state is not None:
        for name, loader in stateful_loaders(trainer).items():
            if name in trainer.pending_loader_state:
                loader.load_state_dict(trainer.pending_loader_state[name])
        trainer.pending_loader_state = None


def stateful_loaders(trainer: Any) -> dict[str, Any]:
    """The loaders whose generators a checkpoint holds: "train" and its views, by name."""
    train_data = trainer.train_data
    loaders = {"train": train_data} if hasattr(train_data, "state_dict") else {}
    for name, view in (getattr(train_data, "views", None) or {}).items():
        if hasattr(view, "state_dict") and view is not train_data:
            loaders[name] = view
    return loaders
