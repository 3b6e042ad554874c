"""Registries of the named things a config refers to: models, trainers and metrics.

They sit below everything that uses them, so the packages form one line with no cycle::

    errors, utils  ->  registry  ->  config  ->  data  ->  models  ->  evaluation  ->  trainer, report  ->  serving
        ->  quick_start, tuning, plugins, cli (and RecBole's import paths, recforge.model)

The config reads the registries. Built-in models and trainers are listed in ``recforge.registry.catalog`` (name ->
``"module:Class"``) and imported on first lookup, not by importing ``recforge``; metrics register when
``recforge.evaluation`` is imported. Third-party models and trainers register with
``@register_model`` / ``@register_trainer``, through the ``recforge.models`` / ``recforge.trainers`` entry-point
groups of an installed package, or by being imported (``recforge run --import my_models``).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any, Generic, TypeVar

from recforge.errors import ConfigError, did_you_mean
from recforge.registry import catalog, recbole_catalog
from recforge.utils.enum_type import ModelType

logger = logging.getLogger("recforge")

T = TypeVar("T")


class Registry(Generic[T]):
    """Objects by name, looked up case-insensitively.

    Args:
        kind: what is registered ("model"), used in messages.
        entry_points: an entry-point group whose entries are imported (and so register) on the first lookup.
        catalog: built-in objects by name as ``"module:attribute"``, imported the first time they are looked up.
        loader: a module whose import registers the built-in objects (imported on the first lookup).
    """

    def __init__(
        self,
        kind: str,
        entry_points: str | None = None,
        catalog: Mapping[str, str] | None = None,
        loader: str | None = None,
    ) -> None:
        self.kind = kind
        self.entry_points = entry_points
        self._entries: dict[str, tuple[str, T]] = {}
        self._catalog = {name.lower(): (name, path) for name, path in (catalog or {}).items()}
        self._entry_points_loaded = entry_points is None
        self._loader = loader

    def add(self, name: str, obj: T) -> T:
        """Register ``obj`` as ``name``; another object under the same name (any case, a built-in included) is a
        ConfigError naming both (re-registering the same class, e.g. after a module reload, is allowed)."""
        existing = self.registered_as(name)
        if existing is not None and existing != _qualname(obj):
            raise ConfigError(
                f"{_qualname(obj)}: a {self.kind} named {name} is already registered ({existing}); give yours another "
                "name"
            )
        self._entries[name.lower()] = (name, obj)
        return obj

    def replace(self, name: str, obj: T) -> str | None:
        """Register ``obj`` as ``name`` in place of what was registered so; returns where that lived (None if
        nothing was)."""
        previous = self.registered_as(name)
        self._entries[name.lower()] = (name, obj)
        return previous

    def registered_as(self, name: str) -> str | None:
        """``"module.Class"`` of what is registered as ``name`` (a built-in not imported yet included), or None."""
        entry = self._entries.get(name.lower())
        if entry is not None:
            return _qualname(entry[1])
        built_in = self._catalog.get(name.lower())
        return built_in[1].replace(":", ".") if built_in is not None else None

    def find(self, name: str) -> T | None:
        """The object registered as ``name`` (any case; a built-in one is imported now), or None."""
        key = name.lower()
        if key not in self._entries and key in self._catalog:
            spelled, path = self._catalog[key]
            module, _, attribute = path.partition(":")
            self._entries.setdefault(key, (spelled, getattr(importlib.import_module(module), attribute)))
        if key not in self._entries and self._loader is not None:
            importlib.import_module(self._loader)
        if key not in self._entries and not self._entry_points_loaded:
            self._load_entry_points()
        entry = self._entries.get(key)
        return entry[1] if entry is not None else None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.find(name) is not None

    def names(self) -> list[str]:
        """Registered names as spelled at registration (built-ins without importing them), sorted."""
        self._load_entry_points()
        if self._loader is not None:
            importlib.import_module(self._loader)
        names = {key: name for key, (name, _) in self._catalog.items()}
        names.update({key: name for key, (name, _) in self._entries.items()})
        return sorted(names.values())

    def is_builtin(self, name: str) -> bool:
        """Whether ``name`` is a built-in of the catalog (and not replaced by another object)."""
        key = name.lower()
        return key in self._catalog and self.registered_as(name) == self._catalog[key][1].replace(":", ".")

    def values(self) -> Iterator[T]:
        """Every registered object (the built-ins are imported)."""
        return iter([self.find(name) for name in self.names()])

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        from importlib.metadata import entry_points

        for entry in entry_points(group=self.entry_points):
            try:
                loaded = entry.load()
            except Exception as exc:  # a broken plug-in must not break recforge; say which one and why
                logger.warning("entry point %s (%s) could not be loaded: %s", entry.name, entry.value, exc)
                continue
            if isinstance(loaded, type) and self.registered_as(loaded.__name__) is None:
                self.add(loaded.__name__, loaded)


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', id(obj))}"


MODELS: Registry[type] = Registry("model", entry_points="recforge.models", catalog=catalog.MODELS)
TRAINERS: Registry[type] = Registry("trainer", entry_points="recforge.trainers", catalog=catalog.TRAINERS)
METRICS: Registry[Any] = Registry("metric", loader=catalog.METRICS_MODULE)

# RecBole's model names (its model/*.yaml files), for telling "not implemented yet" from "unknown".
RECBOLE_MODELS: dict[str, str] = {name.lower(): name for name in recbole_catalog.MODEL_KEYS}


# -- models -----------------------------------------------------------------------------------------


def register_model(cls: type) -> type:
    """Class decorator: make a model available by its class name (in configs, ``--model`` and ``get_model``)."""
    return MODELS.add(cls.__name__, cls)


def get_model_class(name: str) -> type:
    """The model class called ``name`` (any case).

    Raises:
        ConfigError: naming RecBole models that recforge does not implement yet as such, and otherwise listing the
            available models with the closest name.
    """
    cls = MODELS.find(name)
    if cls is not None:
        return cls
    available = ", ".join(MODELS.names())
    recbole_name = RECBOLE_MODELS.get(name.lower())
    if recbole_name is not None:
        raise ConfigError(
            f"{recbole_name} is a RecBole model that recforge does not implement yet; implemented models: {available} "
            "(a model of your own is registered with @register_model and found with --import MODULE)"
        )
    raise ConfigError(f"unknown model '{name}'{did_you_mean(name, MODELS.names())}; available models: {available}")


def get_model(name: str) -> type:
    """RecBole's name for ``get_model_class``."""
    return get_model_class(name)


def model_names() -> list[str]:
    """The registered models' names, sorted."""
    return MODELS.names()


def declared_keys(cls: type) -> tuple | None:
    """The config keys a model class declares (``hyper_parameters``), or None when it declares none and so reads
    free keys, as a RecBole model does."""
    return getattr(cls, "hyper_parameters", None)


# -- trainers ---------------------------------------------------------------------------------------

# RecBole's fallback trainers by model type (get_trainer), used when they are registered.
TRAINER_BY_MODEL_TYPE = {ModelType.KNOWLEDGE: "KGTrainer", ModelType.DECISIONTREE: "DecisionTreeTrainer"}


def register_trainer(cls: type | None = None, *, name: str | None = None) -> Any:
    """Class decorator (``@register_trainer`` or ``@register_trainer(name="MyTrainer")``): make a trainer
    available by name. A trainer named ``<Model>Trainer`` is the one ``get_trainer`` picks for ``<Model>``."""

    def decorate(trainer_class: type) -> type:
        return TRAINERS.add(name or trainer_class.__name__, trainer_class)

    return decorate(cls) if cls is not None else decorate


def get_trainer(model_type: Any = None, model_name: str | None = None) -> type:
    """The trainer class of a model: ``get_trainer(model_class)`` or RecBole's ``get_trainer(model_type,
    model_name)``.

    In order: the trainer the model class names (its ``trainer`` attribute, when not the plain "Trainer"); a
    registered ``<model_name>Trainer`` (RecBole's naming rule); the trainer of the model type (KGTrainer for
    knowledge-aware models, when registered); ``Trainer``.
    """
    model_class = model_type if isinstance(model_type, type) else None
    if model_class is None and model_name is not None:
        model_class = MODELS.find(model_name)
    if model_class is not None:
        model_name = model_class.__name__
        model_type = getattr(model_class, "type", model_type)
        wanted = getattr(model_class, "trainer", "Trainer")
        if wanted != "Trainer":
            trainer = TRAINERS.find(wanted)
            if trainer is None:
                raise ConfigError(
                    f"{model_name} asks for trainer {wanted!r}, which is not registered"
                    f"{did_you_mean(wanted, TRAINERS.names())}; registered trainers: {', '.join(TRAINERS.names())}"
                )
            return trainer
    for candidate in (f"{model_name}Trainer" if model_name else None, TRAINER_BY_MODEL_TYPE.get(model_type), "Trainer"):
        trainer = TRAINERS.find(candidate) if candidate else None
        if trainer is not None:
            return trainer
    raise ConfigError("no trainer is registered (import recforge first)")


# -- metrics ----------------------------------------------------------------------------------------

# Metric kinds: what a metric reads, and so in which evaluation modes it can be computed.
RANKING, BEYOND, VALUE, GROUPED = "ranking", "beyond-accuracy", "value", "grouped"


def register_metric(metric: T) -> T:
    """Register a metric description (an object with ``name``, ``kind`` and ``at_k``)."""
    return METRICS.add(metric.name, metric)


def metric_spec(name: str) -> Any:
    """The registered metric called ``name`` (any case), or a ConfigError listing the known ones."""
    metric = METRICS.find(name)
    if metric is None:
        raise ConfigError(
            f"config key 'metrics': unknown metric {name!r}{did_you_mean(name, METRICS.names())}; known: "
            f"{', '.join(METRICS.names())}"
        )
    return metric


__all__ = [
    "BEYOND",
    "GROUPED",
    "METRICS",
    "MODELS",
    "RANKING",
    "RECBOLE_MODELS",
    "TRAINERS",
    "VALUE",
    "Registry",
    "declared_keys",
    "get_model",
    "get_model_class",
    "get_trainer",
    "metric_spec",
    "model_names",
    "register_metric",
    "register_model",
    "register_trainer",
]
