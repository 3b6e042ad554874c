"""Checkpoint files: a dict of plain values and tensors written atomically and read safely
(``torch.load(weights_only=True)``), a missing, truncated, corrupt, foreign or newer file a CheckpointError naming
it. What a trainer's checkpoint holds is ``recforge.trainer.checkpoint``'s."""

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
