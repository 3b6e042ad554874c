"""The hyper-parameter keys of every registered model: built-in ones from ``recforge.config.declarations`` (no model
imported), the others (a user's) from their classes."""

from __future__ import annotations

from typing import Any

from recforge.config.declarations import DECLARATIONS
from recforge.registry import MODELS, declared_keys


def model_declaration(name: str) -> dict[str, Any] | None:
    """What a built-in model declares (type, input_type, trainer, keys), or None for another model."""
    return DECLARATIONS.get(name) if MODELS.is_builtin(name) else None


def all_model_keys(exclude: type | None = None) -> dict[str, list[Any]]:
    """``{key name: [(model name, Key), ...]}`` over the registered models that declare keys, except ``exclude``."""
    owners: dict[str, list[Any]] = {}
    excluded = f"{exclude.__module__}.{exclude.__qualname__}" if exclude is not None else None
    for name in MODELS.names():
        if MODELS.registered_as(name) == excluded:
            continue
        declaration = model_declaration(name)
        keys = declaration["keys"] if declaration is not None else declared_keys(MODELS.find(name))
        for key in keys or ():
            owners.setdefault(key.name, []).append((name, key))
    return owners
