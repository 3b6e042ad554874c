"""Checkpoint files: written atomically, read safely (``torch.load(weights_only=True)``), checked on load.

A checkpoint is a dict of plain values and tensors only (no pickled classes), so it loads with
``weights_only=True``::

    format, version          "recforge.checkpoint", 1
    model_name               class name of the model
    config                   the resolved config as plain values
    epoch                    the last completed epoch (-1 before the first)
    model                    model.state_dict()
    optimizers, schedulers   {name: state_dict}
    scaler                   GradScaler state or None
    trainer                  early-stopping counter, best score and result, loss history
    loaders, rng, callbacks  states that make a resumed run continue exactly
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path
from typing import Any

import torch

from recforge.errors import CheckpointError
from recforge.utils.files import atomic_write

FORMAT = "recforge.checkpoint"
VERSION = 1
FULL_DISK_BYTES = 16 << 20  # a failed write with less free space than this is reported as a full disk


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically: a temporary file in the same folder, flushed, then renamed.

    A crash mid-write leaves any previous file at ``path`` intact.
    """
    path = Path(path)
    try:
        with atomic_write(path, durable=True) as handle:
            torch.save({"format": FORMAT, "version": VERSION, **state}, handle)
    except RuntimeError as exc:  # torch's zip writer reports a failed write as an "enforce fail", not an OSError
        raise _write_failure(exc, path) from exc
    return path


def _write_failure(exc: RuntimeError, path: Path) -> BaseException:
    """The OSError behind a failed ``torch.save`` (the disk full, most often), or ``exc`` itself."""
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, OSError):
        return OSError(cause.errno, cause.strerror or str(cause), str(path))
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return exc
    if free < FULL_DISK_BYTES:
        return OSError(errno.ENOSPC, f"No space left on device ({free:,} bytes free)", str(path))
    return exc


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu", mmap: bool = False) -> dict[str, Any]:
    """Read a checkpoint; a missing, truncated, corrupt or foreign file is a CheckpointError naming it. With
    ``mmap`` the tensors are mapped, not read (for reading the config alone)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as exc:  # torch raises many types for damaged files (RuntimeError, EOFError, UnpicklingError)
        raise CheckpointError(
            f"checkpoint {path} cannot be read (truncated, corrupt or not a torch file): {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} is not a recforge checkpoint")
    if state.get("version", 0) > VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {state['version']}, newer than this recforge reads ({VERSION})"
        )
    return state


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
