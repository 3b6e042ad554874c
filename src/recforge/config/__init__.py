"""Typed, layered configuration with RecBole's key names (``Config`` and ``parse_command_line`` are imported on first
use, so reading the model declarations does not load the config machinery)."""

from __future__ import annotations

import importlib
from typing import Any

from recforge.config.types import Key

_LAZY = {"Config": "recforge.config.config", "parse_command_line": "recforge.config.sources"}

__all__ = ["Config", "Key", "parse_command_line"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'recforge.config' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
