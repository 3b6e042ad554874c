"""Cross-network models over feature fields: DCN and DCNV2 (RecBole's definitions and defaults).

Cross weights keep RecBole's initialisation (standard normal; biases zero) and are regularised by
``reg_weight`` x the sum of their (unsquared) L2 norms, as RecBole's ``RegLoss``.
"""

from __future__ import annotations

import torch
from torch import nn

from recforge.config.types import Bool, Float, Int, Key, Str
from recforge.models.context.base import EMBEDDING_KEY, ContextRecommender, mlp_keys
from recforge.models.context.fields import mlp_layers
from recforge.registry import register_model


@register_model
class DCN(ContextRecommender):
    """Deep & Cross Network (Wang et al., 2017): x_{l+1} = x0 (x_l . w_l) + b_l + x_l beside a deep MLP."""

    hyper_parameters = (
        EMBEDDING_KEY,
        *mlp_keys([256, 256, 256], 0.2),
        Key("cross_layer_num", Int(minimum=0), 6, "Number of cross layers."),
        Key("reg_weight", Float(minimum=0.0), 2.0, "Weight of the L2 norms of the cross weights."),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        size = self.num_feature_field * self.embedding_size
        hidden = config["mlp_hidden_size"]
        layers = config["cross_layer_num"]
        self.reg_weight = config["reg_weight"]
        self.mlp = mlp_layers([size, *hidden], config["dropout_prob"], batch_norm=True)
        self.predict_layer = nn.Linear(size + hidden[-1], 1)
        self.init_weights()
        self.cross_w = nn.ParameterList(nn.Parameter(torch.randn(size)) for _ in range(layers))
        self.cross_b = nn.ParameterList(nn.Parameter(torch.zeros(size)) for _ in range(layers))

    def logit(self, interaction) -> torch.Tensor:
        x0 = self.embed(interaction).flatten(1)
        x = x0
        for w, b in zip(self.cross_w, self.cross_b, strict=True):
            x = x0 * (x @ w).unsqueeze(1) + b + x
        return self.predict_layer(torch.cat([x, self.mlp(x0)], dim=1)).squeeze(-1)

    def regularisation(self) -> torch.Tensor:
        return self.reg_weight * sum(
            (w.norm(2) for w in self.cross_w), torch.zeros((), device=self.first_order_bias.device)
        )


@register_model
class DCNV2(ContextRecommender):
    """DCN-V2 (Wang et al., 2021): full-rank cross layers x_{l+1} = x0 * (W_l x_l + b_l) + x_l, or (``mixed``) a
    mixture of low-rank experts with gates; the deep part after (``stacked``) or beside (``parallel``) them."""

    hyper_parameters = (
        Key("mixed", Bool(), False, "A mixture of low-rank cross experts (DCN-Mix) instead of full-rank layers."),
        Key("structure", Str(choices=("stacked", "parallel")), "stacked", "Deep part after or beside the cross part."),
        Key("cross_layer_num", Int(minimum=0), 3, "Number of cross layers."),
        Key("expert_num", Int(minimum=1), 4, "Experts per cross layer (mixed)."),
        Key("low_rank", Int(minimum=1), 128, "Rank r of each expert (mixed)."),
        Key("embedding_size", Int(minimum=1), 16, "Embedding size d of every feature field."),
        *mlp_keys([768, 768], 0.2),
        Key("reg_weight", Float(minimum=0.0), 2.0, "Weight of the L2 norms of the cross weights."),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        size = self.num_feature_field * self.embedding_size
        hidden = config["mlp_hidden_size"]
        layers, experts, rank = config["cross_layer_num"], config["expert_num"], config["low_rank"]
        self.mixed, self.structure, self.reg_weight = config["mixed"], config["structure"], config["reg_weight"]
        self.mlp = mlp_layers([size, *hidden], config["dropout_prob"], batch_norm=True)
        self.predict_layer = nn.Linear(hidden[-1] if self.structure == "stacked" else size + hidden[-1], 1)
        if self.mixed:
            self.gating = nn.ModuleList(nn.Linear(size, 1) for _ in range(experts))
        self.init_weights()
        if self.mixed:
            self.cross_u = nn.ParameterList(nn.Parameter(torch.randn(experts, size, rank)) for _ in range(layers))
            self.cross_v = nn.ParameterList(nn.Parameter(torch.randn(experts, size, rank)) for _ in range(layers))
            self.cross_c = nn.ParameterList(nn.Parameter(torch.randn(experts, rank, rank)) for _ in range(layers))
        else:
            self.cross_w = nn.ParameterList(nn.Parameter(torch.randn(size, size)) for _ in range(layers))
        self.cross_b = nn.ParameterList(nn.Parameter(torch.zeros(size)) for _ in range(layers))

    def _cross(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0
        for i, bias in enumerate(self.cross_b):
            if not self.mixed:
                x = x0 * (x @ self.cross_w[i].T + bias) + x
                continue
            gates = torch.softmax(torch.cat([gate(x) for gate in self.gating], dim=1), dim=1)  # [B, E]
            v = torch.tanh(torch.einsum("bd,edr->ber", x, self.cross_v[i]))
            c = torch.tanh(torch.einsum("ber,eqr->beq", v, self.cross_c[i]))
            u = torch.einsum("beq,edq->bed", c, self.cross_u[i])
            experts = x0.unsqueeze(1) * (u + bias)  # [B, E, D]
            x = x + (experts * gates.unsqueeze(-1)).sum(dim=1)
        return x

    def logit(self, interaction) -> torch.Tensor:
        x0 = self.embed(interaction).flatten(1)
        if self.structure == "stacked":
            return self.predict_layer(self.mlp(self._cross(x0))).squeeze(-1)
        return self.predict_layer(torch.cat([self._cross(x0), self.mlp(x0)], dim=1)).squeeze(-1)

    def regularisation(self) -> torch.Tensor:
        weights = [*self.cross_u, *self.cross_v, *self.cross_c] if self.mixed else list(self.cross_w)
        zero = torch.zeros((), device=self.first_order_bias.device)
        return self.reg_weight * sum((w.norm(2) for w in weights), zero)
