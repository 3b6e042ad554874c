"""xDeepFM over feature fields (RecBole's definition and defaults): a compressed interaction network beside an MLP.

Layer k of the CIN maps the [B, H_{k-1} m, d] products X_{k-1} o X_0 (every row of the previous layer times every
field) with a 1 x 1 convolution to [B, H_k, d], then ReLU. Without ``direct`` (RecBole's default) each layer but the
last splits its output in half: the first half feeds the next layer, the second half the output (sizes rounded
down to even numbers, as RecBole does); with ``direct`` the whole output does both. The outputs, summed over d,
go through a linear layer. The MLP's last layer has one unit followed by ReLU, as in RecBole (its MLPLayers
activates every layer). ``reg_weight`` x the L2 norms of the MLP, first-order and convolution weights joins the
loss.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from recforge.config.types import Bool, Float, Int, Key, ListOf
from recforge.models.context.base import EMBEDDING_KEY, ContextRecommender, mlp_keys
from recforge.models.context.fields import mlp_layers
from recforge.registry import register_model

logger = logging.getLogger("recforge")


def cin_sizes(sizes: list[int], direct: bool) -> list[int]:
    """The CIN layer sizes used: as given with ``direct``, else each rounded down to an even number (RecBole's
    rule, the last one included), with a warning when a layer before the last changes."""
    if direct:
        return list(sizes)
    even = [size // 2 * 2 for size in sizes]
    if even[:-1] != list(sizes[:-1]):
        logger.warning("CIN layer sizes before the last must be even without 'direct'; using %s", even)
    return even


@register_model
class xDeepFM(ContextRecommender):
    """xDeepFM (Lian et al., KDD 2018): first order + linear(CIN) + ReLU(MLP) (see the module docstring)."""

    hyper_parameters = (
        EMBEDDING_KEY,
        *mlp_keys([128, 128, 128], 0.2),
        Key("reg_weight", Float(minimum=0.0), 5e-4, "Weight of the L2 norms of the MLP, first-order and CIN weights."),
        Key("direct", Bool(), False, "Every CIN layer feeds both the next layer and the output whole."),
        Key("cin_layer_size", ListOf(Int(minimum=1), min_length=1), [100, 100, 100], "Sizes of the CIN layers."),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.direct = config["direct"]
        self.reg_weight = config["reg_weight"]
        self.cin_layer_size = cin_sizes(config["cin_layer_size"], self.direct)
        m = self.num_feature_field
        rows = [m]  # H_k: the rows each layer passes on
        self.cin = nn.ModuleList()
        for size in self.cin_layer_size:
            self.cin.append(nn.Conv1d(rows[-1] * m, size, 1))
            rows.append(size if self.direct else size // 2)
        sizes = self.cin_layer_size
        out = sum(sizes) if self.direct else sum(sizes[:-1]) // 2 + sizes[-1]
        self.cin_linear = nn.Linear(out, 1)
        self.mlp = mlp_layers([m * self.embedding_size, *config["mlp_hidden_size"], 1], config["dropout_prob"])
        self.init_weights()
        for conv in self.cin:  # RecBole's init: Xavier-normal kernels, PyTorch's default biases
            nn.init.xavier_normal_(conv.weight)

    def compressed_interaction(self, x0: torch.Tensor) -> torch.Tensor:
        """[B, sum of the output rows] CIN output of [B, m, d] embeddings, summed over d."""
        batch, _, d = x0.shape
        hidden, outputs = x0, []
        for k, conv in enumerate(self.cin):
            products = (hidden.unsqueeze(2) * x0.unsqueeze(1)).reshape(batch, -1, d)  # [B, H m, d]
            out = torch.relu(conv(products))
            if self.direct or k == len(self.cin) - 1:
                hidden = out
                outputs.append(out)
            else:
                half = self.cin_layer_size[k] // 2
                hidden, direct = out[:, :half], out[:, half:]
                outputs.append(direct)
        return torch.cat(outputs, dim=1).sum(dim=2)

    def logit(self, interaction) -> torch.Tensor:
        x0 = self.embed(interaction)
        cin = self.cin_linear(self.compressed_interaction(x0)).squeeze(-1)
        return self.first_order_linear(interaction) + cin + self.mlp(x0.flatten(1)).squeeze(-1)

    def regularisation(self) -> torch.Tensor:
        weights = [p for name, p in self.mlp.named_parameters() if name.endswith("weight")]
        weights += [p for name, p in self.first_order.named_parameters() if name.endswith("weight")]
        weights += [conv.weight for conv in self.cin]
        zero = torch.zeros((), device=self.first_order_bias.device)
        return self.reg_weight * sum((w.norm(2) for w in weights), zero)
