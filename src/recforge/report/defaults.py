"""What a run's config changed: each saved key against its default for the run's model and data set.

The default of a key is what ``Config(model, dataset)`` resolves it to with nothing else given: the package's
default, the model's, the data set's, the model family's (knowledge-aware, context-aware). Keys resolved for the
machine are compared with what the run's own machine resolves them to: ``device`` is where the run ran and is
never a change; ``precision`` and ``enable_scaler`` are changes when they differ from their automatic values for
that device (``precision`` from ``enable_amp``, ``enable_scaler`` on exactly for fp16).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from recforge.config import Config
from recforge.config.keys import PACKAGE_KEYS
from recforge.errors import RecforgeError

logger = logging.getLogger("recforge")

UNKNOWN = object()  # the default of a key that neither the package nor a registered model declares


@dataclass(frozen=True)
class Setting:
    """One key of a run's config: its value, its default (``UNKNOWN`` when there is none to compare with), and
    whether the value is a change from the default."""

    key: str
    value: Any
    default: Any

    @property
    def changed(self) -> bool:
        return self.default is not UNKNOWN and self.value != self.default


def settings(config: Mapping[str, Any]) -> list[Setting]:
    """Every key of a saved config (in its order) with its default."""
    defaults = default_values(str(config.get("model")), str(config.get("dataset")))
    machine = _machine_defaults(config)
    return [Setting(k, v, machine.get(k, defaults.get(k, UNKNOWN))) for k, v in config.items()]


@lru_cache(maxsize=64)
def _defaults(model: str, dataset: str) -> tuple[tuple[str, Any], ...]:
    try:
        return tuple(Config(model, dataset, cmd_args=[]).to_dict().items())
    except RecforgeError as exc:
        # A model of a user's own that is not registered here: only the package's keys can be compared.
        logger.warning("report: the defaults of %s are unknown here (%s); only package keys are compared", model, exc)
        package = {k.name for k in PACKAGE_KEYS} - {"model"}
        return tuple((k, v) for k, v in Config("Pop", dataset, cmd_args=[]).to_dict().items() if k in package)


def default_values(model: str, dataset: str) -> dict[str, Any]:
    """The resolved defaults of ``model`` on ``dataset`` as plain values (as config.yaml holds them)."""
    return dict(_defaults(model, dataset))


def _machine_defaults(config: Mapping[str, Any]) -> dict[str, Any]:
    """The automatic values of the machine-resolved keys for the run's own device."""
    device = str(config.get("device") or "cpu")
    precision = ("fp16" if device.startswith("cuda") else "bf16") if config.get("enable_amp") else "fp32"
    return {"device": config.get("device"), "precision": precision, "enable_scaler": precision == "fp16"}
