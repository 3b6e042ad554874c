"""RecBole's transformer encoder (``recbole.model.layers``): post-LayerNorm layers of multi-head self-attention and
a feed-forward block, with the parameter names of RecBole's modules (a RecBole state dict loads).

Attention runs through ``torch.nn.functional.scaled_dot_product_attention`` (fused kernels on CUDA, one op on the
CPU) with RecBole's additive mask; tests/test_models_sequential.py shows it equal, within float tolerance, to
RecBole's explicit softmax(QK^T / sqrt(d_head) + mask) V. Attention dropout is drawn inside the fused op, so a
training run matches RecBole in distribution, not draw for draw.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def gelu(x: torch.Tensor) -> torch.Tensor:
    """The erf GELU, RecBole's formula ``x * 0.5 * (1 + erf(x / sqrt(2)))`` (one fused op: the formula's four
    [B, L, inner] intermediates are not kept for the backward pass; equal within float rounding, tested)."""
    return F.gelu(x)


ACTIVATIONS = {
    "gelu": gelu,
    "relu": F.relu,
    "swish": lambda x: x * torch.sigmoid(x),
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
}


class MultiHeadAttention(nn.Module):
    """Self-attention [B, L, d] -> [B, L, d]: LayerNorm(x + dropout(dense(attention(x))))."""

    def __init__(
        self, n_heads: int, hidden_size: int, hidden_dropout_prob: float, attn_dropout_prob: float, eps: float
    ) -> None:
        super().__init__()
        if hidden_size % n_heads != 0:
            from recforge.errors import ConfigError

            raise ConfigError(
                f"config key 'hidden_size': {hidden_size} is not a multiple of n_heads ({n_heads}); change either"
            )
        self.num_attention_heads = n_heads
        self.attention_head_size = hidden_size // n_heads
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        self.attn_dropout_prob = attn_dropout_prob
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=eps)
        self.out_dropout = nn.Dropout(hidden_dropout_prob)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(*x.shape[:-1], self.num_attention_heads, self.attention_head_size).transpose(1, 2)

    def forward(
        self, input_tensor: torch.Tensor, attention_mask: torch.Tensor, positions: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``attention_mask``: additive, broadcastable to [B, heads, L, L]. With ``positions`` [B, P] only those
        positions' outputs [B, P, d] are computed (their rows of the full result: the keys and values are every
        position's)."""
        key, value = (self._heads(layer(input_tensor)) for layer in (self.key, self.value))
        if positions is not None:
            input_tensor = input_tensor.gather(1, positions.unsqueeze(-1).expand(-1, -1, input_tensor.shape[-1]))
            if attention_mask.shape[-2] > 1:  # a causal mask: the positions' rows
                rows = positions[:, None, :, None].expand(-1, attention_mask.shape[1], -1, attention_mask.shape[-1])
                attention_mask = attention_mask.gather(2, rows)
        query = self._heads(self.query(input_tensor))
        dropout = self.attn_dropout_prob if self.training else 0.0
        context = F.scaled_dot_product_attention(
            query, key, value, attn_mask=attention_mask.to(query.dtype), dropout_p=dropout
        )
        context = context.transpose(1, 2).reshape(input_tensor.shape)
        return self.LayerNorm(self.out_dropout(self.dense(context)) + input_tensor)


class FeedForward(nn.Module):
    """[B, L, d] -> [B, L, d]: LayerNorm(x + dropout(dense_2(act(dense_1(x)))))."""

    def __init__(self, hidden_size: int, inner_size: int, dropout: float, hidden_act: str, eps: float) -> None:
        super().__init__()
        self.dense_1 = nn.Linear(hidden_size, inner_size)
        self.intermediate_act_fn = ACTIVATIONS[hidden_act]
        self.dense_2 = nn.Linear(inner_size, hidden_size)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, input_tensor: torch.Tensor) -> torch.Tensor:
        hidden = self.dense_2(self.intermediate_act_fn(self.dense_1(input_tensor)))
        return self.LayerNorm(self.dropout(hidden) + input_tensor)


class TransformerLayer(nn.Module):
    def __init__(self, n_heads, hidden_size, inner_size, hidden_dropout_prob, attn_dropout_prob, hidden_act, eps):
        super().__init__()
        self.multi_head_attention = MultiHeadAttention(
            n_heads, hidden_size, hidden_dropout_prob, attn_dropout_prob, eps
        )
        self.feed_forward = FeedForward(hidden_size, inner_size, hidden_dropout_prob, hidden_act, eps)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor, positions: torch.Tensor | None = None
    ) -> torch.Tensor:
        """[B, L, d] -> [B, L, d]; with ``positions`` [B, P], only those positions' outputs [B, P, d]."""
        return self.feed_forward(self.multi_head_attention(hidden_states, attention_mask, positions))


class TransformerEncoder(nn.Module):
    """``n_layers`` transformer layers; ``forward`` returns every layer's output (RecBole's
    ``output_all_encoded_layers=True``) or only the last one's, in a list."""

    def __init__(
        self,
        n_layers: int = 2,
        n_heads: int = 2,
        hidden_size: int = 64,
        inner_size: int = 256,
        hidden_dropout_prob: float = 0.5,
        attn_dropout_prob: float = 0.5,
        hidden_act: str = "gelu",
        layer_norm_eps: float = 1e-12,
    ) -> None:
        super().__init__()
        args = (n_heads, hidden_size, inner_size, hidden_dropout_prob, attn_dropout_prob, hidden_act, layer_norm_eps)
        layer = TransformerLayer(*args)  # one layer copied, as RecBole: the same random draws for a seed
        self.layer = nn.ModuleList([copy.deepcopy(layer) for _ in range(n_layers)])

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TransformerEncoder:
        """Built from the keys of ``recforge.models.sequential.base.transformer_keys``."""
        return cls(
            n_layers=config["n_layers"],
            n_heads=config["n_heads"],
            hidden_size=config["hidden_size"],
            inner_size=config["inner_size"],
            hidden_dropout_prob=config["hidden_dropout_prob"],
            attn_dropout_prob=config["attn_dropout_prob"],
            hidden_act=config["hidden_act"],
            layer_norm_eps=config["layer_norm_eps"],
        )

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor, output_all_encoded_layers: bool = True
    ) -> list[torch.Tensor]:
        return run_layers(self.layer, hidden_states, attention_mask, output_all_encoded_layers)

    def outputs_at(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor, positions: torch.Tensor
    ) -> torch.Tensor:
        """The last layer's outputs at ``positions`` [B, P] only: [B, P, d], equal (within float rounding) to
        ``forward(...)[-1]`` gathered there, without the last layer's work for the other positions."""
        *layers, last = self.layer
        for layer in layers:
            hidden_states = layer(hidden_states, attention_mask)
        return last(hidden_states, attention_mask, positions)


def run_layers(layers: nn.ModuleList, hidden_states: torch.Tensor, extra: torch.Tensor, every: bool) -> list:
    """RecBole's encoder loop: ``hidden = layer(hidden, extra)`` layer after layer; every layer's output in a list
    (``every``, RecBole's ``output_all_encoded_layers``) or only the last one's."""
    outputs = []
    for layer in layers:
        hidden_states = layer(hidden_states, extra)
        if every:
            outputs.append(hidden_states)
    return outputs if every else [hidden_states]
