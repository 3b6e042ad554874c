"""FEARec's encoder (RecBole's ``FEAEncoder`` / ``FEABlock`` / ``HybridAttention`` of
``recbole.model.sequential_recommender.fearec``), with RecBole's parameter names so a RecBole state dict loads.

``HybridAttention`` is an auto-correlation attention in the frequency domain: the cross-spectrum of queries and keys,
kept on one band of frequencies per layer, gives by an inverse FFT a correlation per delay; the values rolled by the
``int(topk_factor * log L)`` most correlated delays are averaged with softmax weights of those correlations (delays
shared by the batch in training, per row in evaluation, as RecBole). With ``dual_domain`` a causal self-attention
over the band-limited queries, keys and values is mixed in with weight ``spatial_ratio``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from recforge.models.sequential.layers import FeedForward, run_layers


def frequency_band(config: Mapping[str, Any], layer: int) -> tuple[int, int]:
    """Layer ``layer``'s band of rFFT frequencies ``[left, right)`` of the ``MAX_ITEM_LIST_LENGTH // 2 + 1``.

    RecBole's rule: with ``global_ratio > 1 / n_layers`` every layer keeps a window of ``global_ratio`` of the
    spectrum, slid down by ``((1 - global_ratio) * bins) // (n_layers - 1)`` per layer; otherwise layer i keeps the
    i-th highest of ``n_layers`` equal slices. (RecBole computes the slide also when it is unused and so divides by
    zero with ``n_layers: 1``; it is computed only where used here.)
    """
    bins = config["MAX_ITEM_LIST_LENGTH"] // 2 + 1
    n_layers, global_ratio = config["n_layers"], config["global_ratio"]
    if global_ratio > 1 / n_layers:
        width, step = global_ratio, (bins * (1 - global_ratio)) // (n_layers - 1)
    else:
        width = 1 / n_layers
        step = width * bins
    return int(bins * (1 - width) - layer * step), int(bins - layer * step)


def roll_average(values: torch.Tensor, delays: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``sum_i weights[b, i] * roll(values[b], -delays[b, i])`` along the last axis: [B, h, e, L], [B, k] x2 ->
    [B, h, e, L] (float32, as RecBole's accumulator)."""
    length = values.shape[-1]
    index = (torch.arange(length, device=values.device) + delays.unsqueeze(-1)) % length  # [B, k, L]
    shape = (*values.shape[:3], *index.shape[1:])
    patterns = values.unsqueeze(3).expand(shape).gather(-1, index[:, None, None].expand(shape))
    return (patterns.float() * weights[:, None, None, :, None]).sum(dim=3)


class HybridAttention(nn.Module):
    """[B, L, d] -> [B, L, d]: LayerNorm(x + dropout(dense(auto-correlation (+ spatial) context))).

    ``attention_mask`` (additive, [B, 1, L, L]) is read by the spatial attention of ``dual_domain`` only.
    """

    def __init__(self, n_heads, hidden_size, hidden_dropout_prob, attn_dropout_prob, layer_norm_eps, i, config):
        super().__init__()
        if hidden_size % n_heads != 0:
            from recforge.errors import ConfigError

            raise ConfigError(
                f"config key 'hidden_size': {hidden_size} is not a multiple of n_heads ({n_heads}); change either"
            )
        self.factor = config["topk_factor"]
        length = config["MAX_ITEM_LIST_LENGTH"]
        if int(self.factor * math.log(length)) > 2 * (length // 2):
            from recforge.errors import ConfigError

            raise ConfigError(
                f"config key 'topk_factor': {self.factor} x ln({length}) delays are more than the {2 * (length // 2)} "
                "a history of MAX_ITEM_LIST_LENGTH positions has; lower it"
            )
        self.num_attention_heads = n_heads
        self.attention_head_size = hidden_size // n_heads
        self.all_head_size = hidden_size
        self.query_layer = nn.Linear(hidden_size, hidden_size)
        self.key_layer = nn.Linear(hidden_size, hidden_size)
        self.value_layer = nn.Linear(hidden_size, hidden_size)
        self.attn_dropout = nn.Dropout(attn_dropout_prob)
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.out_dropout = nn.Dropout(hidden_dropout_prob)
        self.left, self.right = frequency_band(config, i)
        self.dual_domain = config["dual_domain"]
        self.spatial_ratio = config["spatial_ratio"]
        # The spatial attention's band: the layer's own with ``std``, else the whole spectrum.
        bins = config["MAX_ITEM_LIST_LENGTH"] // 2 + 1
        self.time_left, self.time_right = (self.left, self.right) if config["std"] else (0, bins)

    def _heads(self, layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        """[B, L, d] -> ``layer(x)``'s heads, positions last: [B, h, e, L]."""
        heads = layer(x).view(*x.shape[:2], self.num_attention_heads, self.attention_head_size)
        return heads.permute(0, 2, 3, 1)

    @staticmethod
    def _band(spectrum: torch.Tensor, left: int, right: int) -> torch.Tensor:
        """The spectrum with the bins outside ``[left, right)`` set to 0."""
        box = torch.zeros_like(spectrum)
        box[..., left:right] = spectrum[..., left:right]
        return box

    def forward(self, input_tensor: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        batch, length, _ = input_tensor.shape
        values = self._heads(self.value_layer, input_tensor)  # [B, h, e, L]
        q_fft = torch.fft.rfft(self._heads(self.query_layer, input_tensor), dim=-1)
        k_fft = torch.fft.rfft(self._heads(self.key_layer, input_tensor), dim=-1)
        cross = self._band(q_fft * torch.conj(k_fft), self.left, self.right)
        corr = torch.fft.irfft(cross, dim=-1).mean(dim=(1, 2))  # [B, L'] (L' = L rounded down to even)
        top_k = int(self.factor * math.log(length))
        if self.training:  # the delays most correlated over the batch, shared by its rows
            delays = torch.topk(corr.mean(dim=0), top_k, dim=-1)[1].expand(batch, -1)
            weights = corr.gather(1, delays)
        else:
            weights, delays = torch.topk(corr, top_k, dim=-1)
        context = roll_average(values, delays, torch.softmax(weights, dim=-1))
        context = context.permute(0, 3, 1, 2).reshape(batch, length, self.all_head_size)
        if self.dual_domain:
            spatial = self._spatial(q_fft, k_fft, torch.fft.rfft(values, dim=-1), attention_mask)
            context = (1 - self.spatial_ratio) * context + self.spatial_ratio * spatial
        return self.LayerNorm(self.out_dropout(self.dense(context)) + input_tensor)

    def _spatial(self, q_fft, k_fft, v_fft, attention_mask: torch.Tensor) -> torch.Tensor:
        """Masked self-attention over the band-limited queries, keys and values -> [B, L, d]."""
        q, k, v = (
            torch.fft.irfft(self._band(s, self.time_left, self.time_right), dim=-1).transpose(-1, -2)
            for s in (q_fft, k_fft, v_fft)
        )  # [B, h, L', e]
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.attention_head_size) + attention_mask
        context = self.attn_dropout(torch.softmax(scores, dim=-1)) @ v
        return context.permute(0, 2, 1, 3).reshape(*context.shape[:1], -1, self.all_head_size)


class FEABlock(nn.Module):
    """Hybrid attention, then RecBole's feed-forward block."""

    def __init__(
        self,
        n_heads,
        hidden_size,
        intermediate_size,
        hidden_dropout_prob,
        attn_dropout_prob,
        hidden_act,
        eps,
        n,
        config,
    ):
        super().__init__()
        self.hybrid_attention = HybridAttention(
            n_heads, hidden_size, hidden_dropout_prob, attn_dropout_prob, eps, n, config
        )
        self.feed_forward = FeedForward(hidden_size, intermediate_size, hidden_dropout_prob, hidden_act, eps)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.feed_forward(self.hybrid_attention(hidden_states, attention_mask))


class FEAEncoder(nn.Module):
    """``n_layers`` ``FEABlock``s, layer i on its own frequency band.

    As RecBole's, the last block is also registered as ``layer_ramp`` (RecBole leaves its loop variable on the
    module): its parameters appear twice in the state dict, and the model's ``apply`` initialises it twice, which
    keeps RecBole's random draws and state-dict keys.
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__()
        self.n_layers = config["n_layers"]
        self.layer = nn.ModuleList()
        for n in range(self.n_layers):
            self.layer_ramp = FEABlock(
                config["n_heads"],
                config["hidden_size"],
                config["inner_size"],
                config["hidden_dropout_prob"],
                config["attn_dropout_prob"],
                config["hidden_act"],
                config["layer_norm_eps"],
                n,
                config,
            )
            self.layer.append(self.layer_ramp)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor, output_all_encoded_layers: bool = True
    ) -> list[torch.Tensor]:
        """[B, L, d] -> every layer's output [B, L, d] (or the last one's only), in a list."""
        return run_layers(self.layer, hidden_states, attention_mask, output_all_encoded_layers)
