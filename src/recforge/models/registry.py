"""Models by name (case-insensitive). Built-in models register on import; users register their own with
``@register_model``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from recforge.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    from recforge.models.base import Recommender

_MODELS: dict[str, type[Recommender]] = {}


def register_model(cls: type[Recommender]) -> type[Recommender]:
    """Class decorator: make ``cls`` available by its class name."""
    key = cls.__name__.lower()
    existing = _MODELS.get(key)
    if existing is not None and existing is not cls and existing.__qualname__ != cls.__qualname__:
        raise ValueError(f"a model named {cls.__name__} is already registered ({existing.__module__})")
    _MODELS[key] = cls
    return cls


def _load_builtin() -> None:
    import recforge.models.general  # noqa: F401  (registers the built-in models)


def get_model_class(name: str) -> type[Recommender]:
    """The model class called ``name`` (any case); an unknown name is a ConfigError listing the models."""
    _load_builtin()
    try:
        return _MODELS[name.lower()]
    except KeyError:
        names = [cls.__name__ for cls in _MODELS.values()]
        raise ConfigError(
            f"unknown model '{name}'{did_you_mean(name, names)}; available models: {', '.join(sorted(names))}"
        ) from None


def get_model(name: str) -> type[Recommender]:
    """RecBole's name for ``get_model_class``."""
    return get_model_class(name)


def model_names() -> list[str]:
    _load_builtin()
    return sorted(cls.__name__ for cls in _MODELS.values())


def all_model_keys() -> dict[str, list[str]]:
    """``{config key: [models declaring it]}`` over every registered model."""
    _load_builtin()
    owners: dict[str, list[str]] = {}
    for cls in _MODELS.values():
        for key in cls.hyper_parameters:
            owners.setdefault(key.name, []).append(cls.__name__)
    return owners
