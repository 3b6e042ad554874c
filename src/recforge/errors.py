"""Errors a user can fix. The CLI prints them as one message without a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class RecforgeError(Exception):
    """Base class of every error caused by input: config, data files, checkpoints."""


class ConfigError(RecforgeError, ValueError):
    """A config key or value is unknown, malformed or impossible."""


class DataError(RecforgeError, ValueError):
    """A data file or data set is missing, malformed or empty after processing."""


class CheckpointError(RecforgeError):
    """A checkpoint file is missing, truncated, corrupt or from another model."""


class RunFolderInUse(RecforgeError):
    """Another process is training in the run folder (it holds the folder's lock)."""


class TrainingError(RecforgeError, RuntimeError):
    """Training cannot go on (for example the loss became NaN or infinite)."""


class TrainingInterrupted(RecforgeError):
    """Training stopped on Ctrl-C or SIGTERM. ``checkpoint`` (None if nothing was saved) resumes it exactly."""

    def __init__(self, epoch: int, checkpoint) -> None:
        self.epoch = epoch
        self.checkpoint = checkpoint
        where = (
            f"; resume with: recforge run --resume {checkpoint}" if checkpoint is not None else "; nothing was saved"
        )
        super().__init__(f"training interrupted after epoch {epoch} completed{where}")


def did_you_mean(name: str, candidates: Iterable[str], cutoff: float = 0.6) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest candidate, or ``""`` when none is as close as ``cutoff``
    (difflib's similarity ratio, 0..1)."""
    pool = {c.lower(): c for c in candidates}
    match = difflib.get_close_matches(name.lower(), list(pool), n=1, cutoff=cutoff)
    return f" (did you mean '{pool[match[0]]}'?)" if match else ""


def shown(token: str, limit: int = 60) -> str:
    """``repr(token)`` for a one-line message: a longer token is cut to ``limit`` characters and its length named."""
    return repr(token) if len(token) <= limit else f"{token[:limit]!r}... ({len(token)} characters)"
