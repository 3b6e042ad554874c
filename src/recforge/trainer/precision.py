"""Mixed precision: autocast on the model's device type and one GradScaler per run.

``precision`` is fp32, bf16 or fp16. RecBole's ``enable_amp`` maps onto it (fp16 on CUDA, bf16 elsewhere, as
``torch.autocast`` does by default), and ``enable_scaler`` switches the GradScaler (by default on exactly for
fp16). The step order is: autocast forward -> ``scaler.scale(loss).backward()`` -> ``scaler.unscale_`` ->
clip -> ``scaler.step`` -> ``scaler.update``, so clipping always sees true gradients.
"""

from __future__ import annotations

import contextlib

import torch

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    """Autocast settings and the run's GradScaler.

    Args:
        precision: "fp32", "bf16" or "fp16".
        device: where the model runs; autocast uses its type.
        use_scaler: whether the GradScaler is enabled.
    """

    def __init__(self, precision: str, device: torch.device, use_scaler: bool) -> None:
        self.name = precision
        self.dtype = DTYPES[precision]
        self.device_type = device.type
        self.enabled = precision != "fp32"
        self.scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)

    def autocast(self) -> contextlib.AbstractContextManager:
        """The context a forward pass runs in (a no-op for fp32)."""
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    def __repr__(self) -> str:
        return f"Precision({self.name}, scaler={'on' if self.scaler.is_enabled() else 'off'})"
