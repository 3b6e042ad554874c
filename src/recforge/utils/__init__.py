"""Small helpers shared across the package, and RecBole's ``recbole.utils`` names::

    from recforge.utils import init_seed, init_logger, get_model, get_trainer, InputType, ModelType, KGDataLoaderState

``get_model`` and ``get_trainer`` live in ``recforge.registry`` (above this package) and are looked up on first use.
"""

from __future__ import annotations

from typing import Any

from recforge.utils.enum_type import InputType, KGDataLoaderState, ModelType

_FROM_REGISTRY = ("get_model", "get_trainer")
_LAZY = {"init_logger": "recforge.utils.log", "init_seed": "recforge.utils.seed"}  # torch: imported when used


def set_color(text: str, color: str, highlight: bool = True) -> str:
    """RecBole's ``set_color``: ``text`` in an ANSI terminal colour (black, red, green, yellow, blue, pink, cyan,
    white)."""
    colors = ["black", "red", "green", "yellow", "blue", "pink", "cyan", "white"]
    if color not in colors:
        return text
    return f"\033[{'1;' if highlight else ''}3{colors.index(color)}m{text}\033[0m"


def __getattr__(name: str) -> Any:
    if name in _FROM_REGISTRY:
        import recforge.registry

        return getattr(recforge.registry, name)
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'recforge.utils' has no attribute {name!r}")


__all__ = [
    "InputType",
    "KGDataLoaderState",
    "ModelType",
    "get_model",
    "get_trainer",
    "init_logger",
    "init_seed",
    "set_color",
]
