"""Building a model once, with its memory checked: ``create_model``.

The model is built for real under an allocation guard. Every tensor its constructor asks torch's sized factories for
(``torch.empty``, ``zeros``, ``ones``, ``full``, ``rand``, ``randn``, ``randint``, ``eye``: what ``nn.Embedding``
and ``nn.Linear`` allocate their weights with) is counted before it is allocated. Once they would take more than
the device's free memory, that allocation and every later one are made on the meta device instead (shapes, no
memory, no random draws), the build finishes, and the shapes give the size for one clear error. For a trainable
model the guard's budget is the free memory / ``TRAINING_COPIES`` (what it allocates is mostly weights, which
training keeps four copies of), so no weight that could not be trained is ever filled; where the meta shapes show
that the excess was buffers, the model is built again, from the same random state, against the whole free memory.
A build is then checked whole: its parameters (x ``TRAINING_COPIES`` for a trainable model) and buffers, those
built from data included, against the memory that was free before it. A seeded build gives the same weights as
``model_class(config, dataset)``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from recforge.errors import ConfigError

logger = logging.getLogger("recforge")

# Training keeps about four copies of each parameter: the weights, their gradients and Adam's two moments.
TRAINING_COPIES = 4
SIZED_FACTORIES = frozenset(
    {torch.empty, torch.empty_strided, torch.empty_permuted, torch.zeros, torch.ones, torch.full}
    | {torch.rand, torch.randn, torch.randint, torch.eye}
)


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


def tensor_bytes(tensor: torch.Tensor) -> int:
    """The bytes ``tensor`` holds (or would hold, on the meta device); a sparse tensor counts its stored entries."""
    if tensor.layout == torch.strided:
        return tensor.numel() * tensor.element_size()
    if tensor.layout == torch.sparse_coo:
        parts = (tensor._values(), tensor._indices())
    elif tensor.layout in (torch.sparse_csr, torch.sparse_bsr):
        parts = (tensor.values(), tensor.crow_indices(), tensor.col_indices())
    else:  # CSC, BSC
        parts = (tensor.values(), tensor.ccol_indices(), tensor.row_indices())
    return sum(map(tensor_bytes, parts))


def model_bytes(model: torch.nn.Module) -> tuple[int, int]:
    """The bytes of a model's (parameters, buffers), meta ones at the size they would have."""
    return sum(map(tensor_bytes, model.parameters())), sum(map(tensor_bytes, model.buffers()))


class AllocationGuard(TorchFunctionMode):
    """Counts the bytes asked of torch's sized factories (``SIZED_FACTORIES``) while it is active. The first request
    that takes the total past ``budget`` sets ``exceeded``: it and every later one are made on the meta device."""

    def __init__(self, budget: int) -> None:
        super().__init__()
        self.budget = budget
        self.requested = 0
        self.exceeded = False

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func not in SIZED_FACTORIES or "out" in kwargs or _on_meta(kwargs.get("device")):
            return func(*args, **kwargs)
        if not self.exceeded:
            on_meta = {**kwargs, "device": "meta"}
            on_meta.pop("generator", None)
            self.requested += tensor_bytes(func(*args, **on_meta))
            self.exceeded = self.requested > self.budget
        if self.exceeded:
            kwargs = {**kwargs, "device": "meta"}
            kwargs.pop("generator", None)
        return func(*args, **kwargs)


def _on_meta(device: Any) -> bool:
    return device is not None and torch.device(device).type == "meta"


def create_model(model_class: type, config: Mapping[str, Any], dataset: Any) -> torch.nn.Module:
    """``model_class(config, dataset)``, built once, after checking that training it fits in the memory of the
    config's device (see the module docstring). Where the free memory cannot be read, nothing is checked.

    Raises:
        ConfigError: naming the model's size keys and the memory needed and available.
    """
    available = available_memory(torch.device(config["device"]))
    if available is None:
        logger.debug("the free memory of %s is unknown: %s is built unchecked", config["device"], model_class.__name__)
        return model_class(config, dataset)
    copies = TRAINING_COPIES if getattr(model_class, "trainable", True) else 1
    rng = _rng_state()
    model, guard = _guarded_build(model_class, config, dataset, available, budget=available // copies)
    sizes = model_bytes(model)
    if guard.exceeded and _needed(model_class, sizes) <= available:
        # what it asked for was mostly buffers, which are not trained: build again, from the same random state,
        # against the whole memory free
        _set_rng_state(rng)
        model, guard = _guarded_build(model_class, config, dataset, available, budget=available)
        sizes = model_bytes(model)
    if guard.exceeded or _needed(model_class, sizes) > available:
        raise _too_large(model_class, config, available, sizes=sizes, requested=guard.requested)
    return model


def _guarded_build(
    model_class: type, config: Mapping[str, Any], dataset: Any, available: int, budget: int
) -> tuple[torch.nn.Module, AllocationGuard]:
    """``model_class(config, dataset)`` under an ``AllocationGuard`` of ``budget`` bytes, and that guard."""
    guard = AllocationGuard(budget)
    with guard:
        try:
            return model_class(config, dataset), guard
        except Exception as error:  # raised by the part of the build that ran on the meta device
            if not guard.exceeded:
                raise
            raise _too_large(model_class, config, available, requested=guard.requested) from error


def _rng_state() -> tuple[torch.Tensor, list[torch.Tensor]]:
    """torch's random state on the CPU and on every visible GPU."""
    return torch.random.get_rng_state(), (torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [])


def _set_rng_state(state: tuple[torch.Tensor, list[torch.Tensor]]) -> None:
    cpu, gpus = state
    torch.random.set_rng_state(cpu)
    if gpus:
        torch.cuda.set_rng_state_all(gpus)


def _needed(model_class: type, sizes: tuple[int, int]) -> int:
    """The bytes training a model of these (parameter, buffer) sizes takes."""
    params, buffers = sizes
    return params * (TRAINING_COPIES if getattr(model_class, "trainable", True) else 1) + buffers


def _too_large(
    model_class: type,
    config: Mapping[str, Any],
    available: int,
    sizes: tuple[int, int] | None = None,
    requested: int = 0,
) -> ConfigError:
    """The error of a model that does not fit: what it needs (at least ``requested``, the bytes its build asked
    for; of what, when its ``sizes`` are known) and the config keys that size it."""
    gib = 2**30
    if sizes is None:
        needed, what = f"more than {requested / gib:,.1f}", "what its build asked for before it stopped"
    else:
        (params, buffers), trainable = sizes, getattr(model_class, "trainable", True)
        needed = f"{max(_needed(model_class, sizes), requested) / gib:,.1f}"
        what = f"{params / gib:,.1f} GiB of parameters{f', x{TRAINING_COPIES} to train' if trainable else ''}"
        what += f", + {buffers / gib:,.1f} GiB of buffers" if buffers >= gib / 10 else ""
    keys = ", ".join(
        f"{key.name}: {config[key.name]}"
        for key in getattr(model_class, "hyper_parameters", None) or ()
        if isinstance(config.get(key.name), int) and not isinstance(config.get(key.name), bool)
    )
    return ConfigError(
        f"{model_class.__name__} would need {needed} GiB ({what}) on {config['device']}, which has "
        f"{available / gib:,.1f} GiB free; lower the model's sizes" + (f" ({keys})" if keys else "")
    )
