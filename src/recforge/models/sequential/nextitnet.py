"""NextItNet: a simple convolutional generative network for next-item recommendation (Yuan et al., WSDM 2019),
RecBole's formulation.

A stack of residual blocks (the paper's block (b): two causal dilated convolutions of width ``kernel_size``, with
dilations ``d`` and ``2d``, each followed by LayerNorm and ReLU, plus the block's input) reads the history's item
embeddings; the blocks' dilations are ``dilations`` repeated ``block_num`` times. The output at the sequence's last
position (position L-1 of the padded [B, L] history, as RecBole, whatever the history's length) goes through a
linear layer and scores every item by a dot product with its embedding. The loss adds
``reg_weight * (||E|| + ||W_final|| + sum of the 2-norms of the blocks' weights)`` (norms, not squared).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from recforge.config.types import Float, Int, Key, ListOf
from recforge.models.losses import RegLoss
from recforge.models.sequential.base import SequentialRecommender, loss_type_key
from recforge.registry import register_model


class ResidualBlock(nn.Module):
    """Residual block (b) of the paper (RecBole's ``ResidualBlock_b``): [B, L, C] -> [B, L, C]."""

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int = 3, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channel, out_channel, kernel_size=(1, kernel_size), padding=0, dilation=dilation)
        self.ln1 = nn.LayerNorm(out_channel, eps=1e-8)
        self.conv2 = nn.Conv2d(out_channel, out_channel, kernel_size=(1, kernel_size), padding=0, dilation=dilation * 2)
        self.ln2 = nn.LayerNorm(out_channel, eps=1e-8)
        self.dilation = dilation
        self.kernel_size = kernel_size

    def conv_pad(self, x: torch.Tensor, dilation: int) -> torch.Tensor:
        """[B, L, C] -> [B, C, 1, L + (kernel_size - 1) * dilation], zeros on the left, so that the convolution's
        output at position t sees positions <= t only."""
        return F.pad(x.permute(0, 2, 1).unsqueeze(2), ((self.kernel_size - 1) * dilation, 0, 0, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(self.conv_pad(x, self.dilation)).squeeze(2).permute(0, 2, 1)  # [B, L, C]
        out = F.relu(self.ln1(out))
        out2 = self.conv2(self.conv_pad(out, self.dilation * 2)).squeeze(2).permute(0, 2, 1)
        out2 = F.relu(self.ln2(out2))
        return out2 + x


@register_model
class NextItNet(SequentialRecommender):
    """Causal dilated convolutions over the history; the last position's output scores the next item."""

    hyper_parameters = (
        Key("embedding_size", Int(minimum=1), 64, "Dimension of item embeddings and of the residual channels."),
        Key("kernel_size", Int(minimum=1), 3, "Width of the convolution filters."),
        Key("block_num", Int(minimum=1), 5, "How many times the list of dilations is repeated."),
        Key("dilations", ListOf(Int(minimum=1), min_length=1), [1, 4], "Dilations of successive residual blocks."),
        Key("reg_weight", Float(minimum=0.0), 1e-5, "Weight of the L2-norm regulariser."),
        loss_type_key(),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.embedding_size: int = config["embedding_size"]
        self.residual_channels: int = config["embedding_size"]
        self.block_num: int = config["block_num"]
        self.dilations: list[int] = list(config["dilations"]) * self.block_num
        self.kernel_size: int = config["kernel_size"]
        self.reg_weight: float = config["reg_weight"]
        self.item_embedding = nn.Embedding(self.n_items, self.embedding_size, padding_idx=0)
        channels = self.residual_channels
        self.residual_blocks = nn.Sequential(
            *(ResidualBlock(channels, channels, self.kernel_size, dilation) for dilation in self.dilations)
        )
        self.final_layer = nn.Linear(channels, self.embedding_size)
        self.reg_loss = RegLoss()
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        """RecBole's: embeddings uniform(+-sqrt(1 / n_items)) (the padding row included), xavier-normal linear
        weights and linear biases 0.1; convolutions and LayerNorms keep PyTorch's initialisation."""
        if isinstance(module, nn.Embedding):
            bound = math.sqrt(1.0 / self.n_items)
            nn.init.uniform_(module.weight.data, -bound, bound)
        elif isinstance(module, nn.Linear):
            nn.init.xavier_normal_(module.weight.data)
            if module.bias is not None:
                nn.init.constant_(module.bias.data, 0.1)

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor | None = None) -> torch.Tensor:
        """[B, L] -> [B, embedding_size]: the output at position L-1 (``item_seq_len`` is not read, as RecBole)."""
        hidden = self.residual_blocks(self.item_embedding(item_seq))  # [B, L, C]
        return self.final_layer(hidden[:, -1, :])

    def reg_loss_rb(self) -> torch.Tensor | float:
        """``reg_weight`` times the sum of the 2-norms of the residual blocks' weights (LayerNorm weights included,
        as RecBole's names ending in 'weight'); 0 when ``reg_weight`` is 0."""
        if self.reg_weight <= 0.0:
            return 0.0
        weights = [p for name, p in self.residual_blocks.named_parameters() if name.endswith("weight")]
        return self.reg_weight * self.reg_loss(weights)

    def calculate_loss(self, interaction) -> torch.Tensor:
        loss = self.output_loss(self.sequence_output(interaction), interaction)
        reg = self.reg_loss([self.item_embedding.weight, self.final_layer.weight])
        return loss + self.reg_weight * reg + self.reg_loss_rb()
