"""The machine-dependent part of a config: which device a run uses, and whether it exists here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from recforge.errors import ConfigError


def resolve_device(values: Mapping[str, Any]) -> str:
    """The torch device of a run: ``device`` when set (checked to exist), else the first GPU of ``gpu_id`` when
    ``use_gpu`` and CUDA is available (none for '' or a negative id: RecBole's CUDA_VISIBLE_DEVICES hides every
    GPU then), else "cpu"."""
    import torch

    if values.get("device"):
        try:
            device = torch.device(values["device"])
        except RuntimeError as exc:
            raise ConfigError(f"config key 'device': {exc}") from None
        check_device(device)
        return str(device)
    gpu = first_gpu(values["gpu_id"]) if values["use_gpu"] else None
    if gpu is not None and torch.cuda.is_available():
        count = torch.cuda.device_count()
        if gpu >= count:
            raise ConfigError(
                f"config key 'gpu_id': GPU {gpu} does not exist; this machine has {count} CUDA device(s), 0 to "
                f"{count - 1} (RecBole's CUDA_VISIBLE_DEVICES={values['gpu_id']} would hide every GPU and train on "
                "the CPU, or on GPU 0 where CUDA had started already); use gpu_id: 0, or use_gpu: false"
            )
        return f"cuda:{gpu}"
    return "cpu"


def first_gpu(gpu_id: Any) -> int | None:
    """The device number of the first id in ``gpu_id`` ('1,2' -> 1), or None for '' and negative ids."""
    first = str(gpu_id).split(",")[0].strip()
    if not first:
        return None
    try:
        number = int(first)
    except ValueError:
        raise ConfigError(
            f"config key 'gpu_id': {gpu_id!r} is not a list of device numbers like '0' or '0,1'; for another form "
            "of device name, set device (e.g. device: cuda:0)"
        ) from None
    return number if number >= 0 else None


def check_device(device) -> None:
    """A ConfigError when ``device`` does not exist on this machine (checked before anything is allocated)."""
    import torch

    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(
                f"config key 'device': {device} is not available here (torch.cuda.is_available() is False: no "
                "CUDA device or a CPU-only torch); use device: cpu, or leave device unset to pick one"
            )
        if device.index is not None and device.index >= count:
            raise ConfigError(
                f"config key 'device': {device} does not exist; this machine has {count} CUDA device(s), "
                f"cuda:0 to cuda:{count - 1}"
            )
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"config key 'device': {device} is not available here; use device: cpu")


# Saved config keys that describe the machine a run used rather than the run: not carried into a resumed or
# reloaded run (another machine, another number of processes).
MACHINE_KEYS = ("device", "use_gpu", "gpu_id", "nproc", "world_size", "ip", "port", "offset")
PROCESS_KEYS = ("nproc", "world_size")


def machine_independent(saved_config: Mapping[str, Any]) -> dict[str, Any]:
    """A saved config without the keys that describe the machine it ran on (``MACHINE_KEYS``)."""
    return {k: v for k, v in saved_config.items() if k not in MACHINE_KEYS}


def processes(values: Mapping[str, Any]) -> int:
    """How many processes a config trains with in all (``world_size``, else ``nproc``)."""
    world = values.get("world_size") or -1
    return int(world) if world > 0 else int(values.get("nproc") or 1)
