"""``AbstractTrainer``: RecBole's base of every trainer, with its distributed-training hooks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch


def _identity(value: Any) -> Any:
    return value


class AbstractTrainer:
    """Base of all trainers: holds ``config`` and ``model``; ``fit`` and ``evaluate`` are abstract."""

    def __init__(self, config: Mapping[str, Any], model: torch.nn.Module) -> None:
        self.config = config
        self.model = model
        self.distributed_model: torch.nn.parallel.DistributedDataParallel | None = None

    def set_reduce_hook(self) -> None:
        """Arm ``distributed_model``'s gradient reduction for the next backward (RecBole's hook): its forward runs
        once with the model's own forward replaced by the identity, so the loss can come from any method of the
        model (``calculate_loss``, ``calculate_kg_loss``, ...) and still have its gradients averaged over the ranks.
        """
        if self.distributed_model is None:
            return
        module = self.distributed_model.module
        module.forward = _identity  # an instance attribute shadows the class's forward
        try:
            self.distributed_model(torch.zeros(1, device=next(module.parameters()).device))
        finally:
            del module.forward

    def sync_grad_loss(self) -> torch.Tensor | float:
        """0 x every parameter (RecBole's ``sync_grad_loss``): added to a loss, every parameter takes part in the
        backward, so the ranks' gradient reductions stay in step when a loss leaves some parameters out. Sparse
        embeddings take part through an empty lookup, so their gradients stay sparse."""
        if self.distributed_model is None:
            return 0.0
        sparse = {id(m.weight): m for m in self.model.modules() if isinstance(m, torch.nn.Embedding) and m.sparse}
        total: torch.Tensor | float = 0.0
        for p in self.model.parameters():
            if not p.requires_grad:
                continue
            if id(p) in sparse:
                empty = torch.zeros(0, dtype=torch.long, device=p.device)
                total = total + sparse[id(p)](empty).sum() * 0
            else:
                total = total + p.sum() * 0
        return total
