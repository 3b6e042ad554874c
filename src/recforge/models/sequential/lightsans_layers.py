"""LightSANs' encoder (RecBole's ``LightTransformerEncoder`` of ``recbole.model.layers``), with RecBole's parameter
names so a RecBole state dict loads.

A layer's attention is low-rank: the keys and values of the L positions are pooled into ``k_interests`` latent
interests (``ItemToInterestAggregation``), each query attends to the k interests, and a decoupled position term
(attention between the position embeddings alone) mixes the un-pooled values. There is no padding mask. RecBole's
softmaxes run over the *query* axis (``dim=-2``), kept as written.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from recforge.models.sequential.layers import FeedForward, run_layers


class ItemToInterestAggregation(nn.Module):
    """[B, L, d] -> [B, k, d]: interest j is the softmax-over-positions (of ``x @ theta``)-weighted sum of x."""

    def __init__(self, seq_len: int, hidden_size: int, k_interests: int = 5) -> None:
        super().__init__()  # seq_len: unused, RecBole's signature
        self.k_interests = k_interests
        self.theta = nn.Parameter(torch.randn([hidden_size, k_interests]))

    def forward(self, input_tensor: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(input_tensor @ self.theta, dim=-2)  # [B, L, k], normalised over positions
        return weights.transpose(1, 2) @ input_tensor


class LightMultiHeadAttention(nn.Module):
    """[B, L, d], position embeddings [L, d] -> [B, L, d]: LayerNorm(x + dropout(dense(item term + position term)))."""

    def __init__(
        self,
        n_heads: int,
        k_interests: int,
        hidden_size: int,
        seq_len: int,
        hidden_dropout_prob: float,
        attn_dropout_prob: float,
        layer_norm_eps: float,
    ) -> None:
        super().__init__()
        if hidden_size % n_heads != 0:
            from recforge.errors import ConfigError

            raise ConfigError(
                f"config key 'hidden_size': {hidden_size} is not a multiple of n_heads ({n_heads}); change either"
            )
        self.num_attention_heads = n_heads
        self.attention_head_size = hidden_size // n_heads
        self.all_head_size = hidden_size
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        self.attpooling_key = ItemToInterestAggregation(seq_len, hidden_size, k_interests)
        self.attpooling_value = ItemToInterestAggregation(seq_len, hidden_size, k_interests)
        self.attn_scale_factor = 2
        self.pos_q_linear = nn.Linear(hidden_size, hidden_size)
        self.pos_k_linear = nn.Linear(hidden_size, hidden_size)
        self.pos_scaling = float(self.attention_head_size * self.attn_scale_factor) ** -0.5
        self.pos_ln = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.attn_dropout = nn.Dropout(attn_dropout_prob)
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.out_dropout = nn.Dropout(hidden_dropout_prob)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """[..., n, d] -> [..., heads, n, d / heads]."""
        return x.view(*x.shape[:-1], self.num_attention_heads, self.attention_head_size).transpose(-3, -2)

    def forward(self, input_tensor: torch.Tensor, pos_emb: torch.Tensor) -> torch.Tensor:
        scale = math.sqrt(self.attention_head_size)
        mixed_value = self.value(input_tensor)
        query = self._heads(self.query(input_tensor))  # [B, h, L, e]
        key = self._heads(self.attpooling_key(self.key(input_tensor)))  # [B, h, k, e]
        value = self._heads(self.attpooling_value(mixed_value))  # [B, h, k, e]
        item_probs = torch.softmax(query @ key.transpose(-1, -2) / scale, dim=-2)
        context = self.attn_dropout(item_probs) @ value  # [B, h, L, e]

        positions = self.pos_ln(pos_emb).unsqueeze(0)  # [1, L, d]
        pos_query = self._heads(self.pos_q_linear(positions)) * self.pos_scaling
        pos_key = self._heads(self.pos_k_linear(positions))
        pos_probs = torch.softmax(pos_query @ pos_key.transpose(-1, -2) / scale, dim=-2)  # [1, h, L, L]
        context = context + pos_probs @ self._heads(mixed_value)

        context = context.transpose(1, 2).reshape(input_tensor.shape)
        return self.LayerNorm(self.out_dropout(self.dense(context)) + input_tensor)


class LightTransformerLayer(nn.Module):
    """Low-rank attention, then RecBole's feed-forward block."""

    def __init__(
        self,
        n_heads: int,
        k_interests: int,
        hidden_size: int,
        seq_len: int,
        intermediate_size: int,
        hidden_dropout_prob: float,
        attn_dropout_prob: float,
        hidden_act: str,
        layer_norm_eps: float,
    ) -> None:
        super().__init__()
        self.multi_head_attention = LightMultiHeadAttention(
            n_heads, k_interests, hidden_size, seq_len, hidden_dropout_prob, attn_dropout_prob, layer_norm_eps
        )
        self.feed_forward = FeedForward(hidden_size, intermediate_size, hidden_dropout_prob, hidden_act, layer_norm_eps)

    def forward(self, hidden_states: torch.Tensor, pos_emb: torch.Tensor) -> torch.Tensor:
        return self.feed_forward(self.multi_head_attention(hidden_states, pos_emb))


class LightTransformerEncoder(nn.Module):
    """``n_layers`` copies of one ``LightTransformerLayer`` (RecBole deep-copies a single built layer, so every
    layer starts from the same ``theta``s, which the model's normal initialisation leaves alone)."""

    def __init__(
        self,
        n_layers: int = 2,
        n_heads: int = 2,
        k_interests: int = 5,
        hidden_size: int = 64,
        seq_len: int = 50,
        inner_size: int = 256,
        hidden_dropout_prob: float = 0.5,
        attn_dropout_prob: float = 0.5,
        hidden_act: str = "gelu",
        layer_norm_eps: float = 1e-12,
    ) -> None:
        super().__init__()
        layer = LightTransformerLayer(
            n_heads,
            k_interests,
            hidden_size,
            seq_len,
            inner_size,
            hidden_dropout_prob,
            attn_dropout_prob,
            hidden_act,
            layer_norm_eps,
        )
        self.layer = nn.ModuleList([copy.deepcopy(layer) for _ in range(n_layers)])

    def forward(
        self, hidden_states: torch.Tensor, pos_emb: torch.Tensor, output_all_encoded_layers: bool = True
    ) -> list[torch.Tensor]:
        """[B, L, d], [L, d] -> every layer's output [B, L, d] (or the last one's only), in a list."""
        return run_layers(self.layer, hidden_states, pos_emb, output_all_encoded_layers)
