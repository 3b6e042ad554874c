"""EulerNet over feature fields (RecBole's definition and defaults): feature interactions in the complex plane.

Field embedding e_f becomes the complex vector mu_f e^{i e_f} (r = mu cos e, p = mu sin e, mu learned per field,
starting at 1). An Euler interaction layer maps F_in complex fields to F_out: explicitly, in polar form, each
output is a learned weighted product of the inputs (log-modulus and phase times the ``inter_orders`` matrix, plus
biases, then back: lambda e^{i theta}); implicitly, a shared linear layer with ReLU over the real and the imaginary
parts; the two are added (and layer-normed with ``apply_norm``). The logit is one linear map of the last layer's
real part plus the same map of its imaginary part. No first order. ``reg_weight`` x the L2 norms of every
parameter of the layers, mu and the output map joins the loss (RecBole's ``RegularLoss``).
"""

from __future__ import annotations

import torch
from torch import nn

from recforge.config.types import Bool, Float, Int, Key, ListOf
from recforge.models.context.base import ContextRecommender
from recforge.registry import register_model


class EulerInteractionLayer(nn.Module):
    """One Euler interaction layer, [B, F_in, d] (real, imaginary) -> [B, F_out, d] (see the module docstring).

    Initialised as RecBole's: ``inter_orders`` = softmax over the inputs of N(0, 1) / 0.01 (nearly one-hot), the
    biases of lambda and theta N(0, 0.01^2), the implicit map's weight N(0, 0.1^2) with a zero bias.
    """

    def __init__(self, fields_in: int, fields_out: int, size: int, dropouts: tuple[float, float], norm: bool):
        super().__init__()
        self.size, self.apply_norm = size, norm
        self.inter_orders = nn.Parameter(torch.softmax(torch.randn(fields_in, fields_out) / 0.01, dim=0))
        self.im = nn.Linear(fields_in * size, fields_out * size)
        self.bias_lam = nn.Parameter(torch.randn(1, size, fields_out) * 0.01)
        self.bias_theta = nn.Parameter(torch.randn(1, size, fields_out) * 0.01)
        self.drop_ex, self.drop_im = nn.Dropout(dropouts[0]), nn.Dropout(dropouts[1])
        self.norm_r, self.norm_p = nn.LayerNorm([size]), nn.LayerNorm([size])  # regularised even when unused

    def reset_parameters(self) -> None:
        """The implicit map's RecBole init (after the model's Xavier pass)."""
        nn.init.normal_(self.im.weight, mean=0.0, std=0.1)
        nn.init.zeros_(self.im.bias)

    def forward(self, r: torch.Tensor, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch = r.shape[0]
        log_modulus = 0.5 * torch.log(r**2 + p**2 + 1e-8)
        phase = torch.atan2(p, r)
        r, p = self.drop_im(r), self.drop_im(p)
        log_modulus = self.drop_ex(log_modulus.transpose(1, 2))  # [B, d, F_in]
        phase = self.drop_ex(phase.transpose(1, 2))
        modulus = torch.exp(log_modulus @ self.inter_orders + self.bias_lam).transpose(1, 2)  # [B, F_out, d]
        phase = (phase @ self.inter_orders + self.bias_theta).transpose(1, 2)
        r = torch.relu(self.im(r.reshape(batch, -1))).view(batch, -1, self.size)
        p = torch.relu(self.im(p.reshape(batch, -1))).view(batch, -1, self.size)
        out_r, out_p = r + modulus * torch.cos(phase), p + modulus * torch.sin(phase)
        if self.apply_norm:
            out_r, out_p = self.norm_r(out_r), self.norm_p(out_p)
        return out_r, out_p


@register_model
class EulerNet(ContextRecommender):
    """EulerNet (Tian et al., SIGIR 2023): stacked Euler interaction layers (see the module docstring)."""

    hyper_parameters = (
        Key("embedding_size", Int(minimum=1), 16, "Embedding size d of every feature field."),
        Key("order_list", ListOf(Int(minimum=1), min_length=1), [30], "Output fields of each Euler layer."),
        Key("drop_ex", Float(minimum=0.0, maximum=1.0), 0.3, "Dropout of the log-moduli and phases."),
        Key("drop_im", Float(minimum=0.0, maximum=1.0), 0.3, "Dropout of the real and imaginary parts."),
        Key("apply_norm", Bool(), False, "Layer-norm each layer's real and imaginary outputs."),
        Key("reg_weight", Float(minimum=0.0), 1e-5, "Weight of the L2 norms of every non-embedding parameter."),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        d, fields = self.embedding_size, [self.num_feature_field, *config["order_list"]]
        dropouts = (config["drop_ex"], config["drop_im"])
        self.reg_weight = config["reg_weight"]
        self.layers = nn.ModuleList(
            EulerInteractionLayer(fields[k], fields[k + 1], d, dropouts, config["apply_norm"])
            for k in range(len(fields) - 1)
        )
        self.mu = nn.Parameter(torch.ones(1, self.num_feature_field, 1))
        self.reg = nn.Linear(fields[-1] * d, 1)
        self.init_weights()
        for layer in self.layers:
            layer.reset_parameters()
        nn.init.normal_(self.reg.weight, mean=0.0, std=0.01)

    def logit(self, interaction) -> torch.Tensor:
        embeddings = self.embed(interaction)
        r, p = self.mu * torch.cos(embeddings), self.mu * torch.sin(embeddings)
        for layer in self.layers:
            r, p = layer(r, p)
        return (self.reg(r.flatten(1)) + self.reg(p.flatten(1))).squeeze(-1)

    def regularisation(self) -> torch.Tensor | float:
        if self.reg_weight == 0:
            return 0.0
        params = [*self.layers.parameters(), self.mu, *self.reg.parameters()]
        return self.reg_weight * sum((w.norm(2) for w in params), torch.zeros((), device=self.mu.device))
