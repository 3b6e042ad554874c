"""Building blocks shared by models."""

from __future__ import annotations

import torch


def sparse_dense_mm(adjacency: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
    """``adjacency @ dense`` for a sparse (float32) adjacency, safe under autocast.

    ``torch.sparse.mm`` is not autocast-aware: under bf16 autocast the dense input arrives in bf16 while the
    adjacency is float32, and the backward fails with "expected scalar type Float but found BFloat16" (this is
    why RecBole's LightGCN cannot train with enable_amp on a CPU). The product is computed in float32 with
    autocast off; gradients flow back to ``dense`` in its own dtype.

    Args:
        adjacency: sparse [N, M] matrix (COO or CSR), float32.
        dense: [M, d] tensor of any floating dtype.

    Returns:
        [N, d] float32 tensor.
    """
    with torch.autocast(device_type=dense.device.type, enabled=False):
        return torch.sparse.mm(adjacency, dense.float())
