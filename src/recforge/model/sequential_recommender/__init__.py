"""RecBole's ``recbole.model.sequential_recommender``: the sequential models (imported on first use)."""

from __future__ import annotations

from typing import Any

from recforge.registry.catalog import MODELS

_SEQUENTIAL_PACKAGE = "recforge.models.sequential."


def __getattr__(name: str) -> Any:
    target = MODELS.get(name)
    if target is None or not target.startswith(_SEQUENTIAL_PACKAGE):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from recforge.registry import get_model_class

    return get_model_class(name)
