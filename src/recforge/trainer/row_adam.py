"""``RowAdam``: lazy Adam that updates only the rows a sparse gradient touches (the learner ``sparse_adam``).

The semantics are torch's ``SparseAdam`` (and RecBole's ``learner: sparse_adam``): for a parameter with a sparse
gradient (an ``nn.Embedding(sparse=True)``), the moments and values of the rows present in the batch are updated
with Adam's rule and bias correction by the parameter's step count; rows absent from the batch keep their
moments (no decay) and values. Dense gradients get the ordinary Adam update. A sparse parameter's two moments
are kept side by side in one ``moments`` tensor [rows, 2, ...], so each row the batch touches is one gather and
one write of adjacent memory. Only the arithmetic differs:
torch's SparseAdam goes through ``sparse_mask`` and sparse additions, which cost 3.4 ms per BPR batch of 2,048
rows on 2 cores; gathering the rows, updating them densely and writing them back costs a fraction of that.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


class RowAdam(torch.optim.Optimizer):
    """Lazy Adam over sparse gradients, Adam over dense ones (see the module docstring).

    Args:
        params: parameters or parameter groups.
        lr: learning rate.
        betas: the moments' decay rates.
        eps: added to the denominator.
    """

    def __init__(
        self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ) -> None:
        if lr <= 0 or eps <= 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"invalid RowAdam settings: lr={lr}, betas={betas}, eps={eps}")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                sparse = param.grad.is_sparse
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float64)
                    if sparse:  # both moments of a row side by side: one gather and one write per row
                        state["moments"] = param.new_zeros((len(param), 2, *param.shape[1:]))
                    else:
                        state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                        state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                elif sparse and "moments" not in state:  # a checkpoint of the earlier layout
                    state["moments"] = torch.stack([state.pop("exp_avg"), state.pop("exp_avg_sq")], dim=1)
                state["step"] += 1
                step = float(state["step"])
                scale = group["lr"] * (1 - beta2**step) ** 0.5 / (1 - beta1**step)
                if sparse:
                    grad = param.grad.coalesce()
                    rows, values = grad.indices()[0], grad.values()
                    if rows.numel() == 0:
                        continue
                    moments = state["moments"].index_select(0, rows)
                    exp_avg, exp_avg_sq = moments[:, 0], moments[:, 1]
                    exp_avg.lerp_(values, 1 - beta1)  # m + (1 - b1)(g - m), SparseAdam's form
                    exp_avg_sq.lerp_(values * values, 1 - beta2)
                    state["moments"].index_copy_(0, rows, moments)
                    update = exp_avg_sq.sqrt().add_(group["eps"])
                    values = param.index_select(0, rows)  # rows are distinct: gather, add, write back
                    values.addcdiv_(exp_avg, update, value=-scale)
                    param.index_copy_(0, rows, values)
                else:
                    grad = param.grad
                    state["exp_avg"].lerp_(grad, 1 - beta1)
                    state["exp_avg_sq"].lerp_(grad * grad, 1 - beta2)
                    denominator = state["exp_avg_sq"].sqrt().add_(group["eps"])
                    param.addcdiv_(state["exp_avg"], denominator, value=-scale)
        return loss
