"""Building a model only when it fits: its size is computed on the meta device first (no memory is allocated),
and an impossible size is one clear error instead of an allocation failure deep inside torch."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import torch

from recforge.errors import ConfigError

logger = logging.getLogger("recforge")

# Training keeps about four copies of each parameter: the weights, their gradients and Adam's two moments.
TRAINING_COPIES = 4


def available_memory(device: torch.device) -> int | None:
    """Bytes that can still be allocated on ``device`` (None when unknown)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def parameter_bytes(model_class: type, config: Mapping[str, Any], dataset: Any) -> tuple[int, int] | None:
    """The bytes of a model's (parameters, buffers), measured by building it on the meta device (None when the model
    cannot be built there). A sparse tensor counts its stored entries, not its dense size."""
    try:
        with torch.device("meta"):
            probe = model_class(config, dataset)
    except Exception:  # a model that does real work in __init__: no estimate, build it for real
        return None
    params = sum(_bytes(t) for t in probe.parameters() if t.is_meta)
    return params, sum(_bytes(t) for t in probe.buffers() if t.is_meta)


def _bytes(tensor: torch.Tensor) -> int:
    if tensor.layout == torch.strided:
        return tensor.numel() * tensor.element_size()
    try:  # sparse: values and indices of the stored entries
        return tensor._nnz() * (tensor.element_size() + 2 * 8)
    except (RuntimeError, NotImplementedError):
        return 0


def create_model(model_class: type, config: Mapping[str, Any], dataset: Any) -> torch.nn.Module:
    """``model_class(config, dataset)``, after checking that training it fits in the memory of the config's device.

    Raises:
        ConfigError: naming the model's size keys and the memory needed and available.
    """
    sizes = parameter_bytes(model_class, config, dataset)
    size, buffers = sizes or (0, 0)
    available = available_memory(torch.device(config["device"])) if size + buffers else None
    trainable = getattr(model_class, "trainable", True)
    needed = size * (TRAINING_COPIES if trainable else 1) + buffers
    if available is not None and needed > available:
        keys = ", ".join(
            f"{key.name}: {config[key.name]}"
            for key in getattr(model_class, "hyper_parameters", None) or ()
            if isinstance(config.get(key.name), int) and not isinstance(config.get(key.name), bool)
        )
        raise ConfigError(
            f"{model_class.__name__} would need {needed / 2**30:,.1f} GiB ({size / 2**30:,.1f} GiB of parameters"
            f"{', x' + str(TRAINING_COPIES) + ' to train' if trainable else ''}"
            f"{f', + {buffers / 2**30:,.1f} GiB of buffers' if buffers >= 2**30 / 10 else ''}) on {config['device']}, "
            "which has "
            f"{available / 2**30:,.1f} GiB free; lower the model's sizes" + (f" ({keys})" if keys else "")
        )
    return model_class(config, dataset)
