"""Pairwise-interaction models over feature fields: FwFM, AFM, PNN and FFM (RecBole's definitions and defaults).

Each scores every pair of fields (i < j, in ``FieldInputs`` order): FwFM weights the pair's product by a learned
weight of its two field groups, AFM by attention, PNN feeds inner (and outer) products to an MLP, FFM gives every
feature one embedding per field group it meets.
"""

from __future__ import annotations

import torch
from torch import nn

from recforge.config.types import Bool, Float, Int, Key, ListOf, Mapping_, Optional, Str
from recforge.errors import ConfigError
from recforge.models.context.base import EMBEDDING_KEY, ContextRecommender, mlp_keys
from recforge.models.context.fields import FieldEmbedding, mlp_layers
from recforge.registry import register_model

FIELDS_KEY = Key(
    "fields",
    Optional(Mapping_(ListOf(Str()))),
    None,
    "Field groups: group id -> the features in it (none: every feature its own group).",
)


def pair_indices(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The pairs i < j of n fields, row by row: ([P] i, [P] j), P = n (n - 1) / 2."""
    rows, cols = torch.triu_indices(n, n, offset=1)
    return rows, cols


def field_groups(names: list[str], groups: dict | None) -> list[int]:
    """The group index of each feature ``names[k]``: its own k without ``groups``; else the position of the group
    that lists it (groups numbered in their order). Names of no feature here are skipped (RecBole's rule, e.g. the
    context columns left out when ranking); a feature in no group is refused."""
    if groups is None:
        return list(range(len(names)))
    of_name: dict[str, int] = {}
    for position, members in enumerate(groups.values()):
        for name in members:
            of_name.setdefault(name, position)
    missing = [name for name in names if name not in of_name]
    if missing:
        raise ConfigError(f"config key 'fields': the features {missing} are in no group; list every feature of {names}")
    used = sorted({of_name[name] for name in names})
    return [used.index(of_name[name]) for name in names]  # groups without a feature here are dropped


@register_model
class FwFM(ContextRecommender):
    """Field-weighted FM (Pan et al., 2018): first order + sum_{i<j} <e_i, e_j> r_{G(i), G(j)}, the weights r
    learned per pair of field groups (``fields``), dropout on the [B, d] sum before it is reduced over d."""

    hyper_parameters = (
        EMBEDDING_KEY,
        Key("dropout_prob", Float(minimum=0.0, maximum=1.0), 0.0, "Dropout on the summed pair products."),
        FIELDS_KEY,
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        groups = field_groups(self.field_names, config["fields"])
        self.num_groups = max(groups, default=-1) + 1
        rows, cols = pair_indices(self.num_feature_field)
        group = torch.tensor(groups, dtype=torch.long)
        self.register_buffer("pair_rows", rows, persistent=False)
        self.register_buffer("pair_cols", cols, persistent=False)
        self.register_buffer("pair_groups", torch.stack([group[rows], group[cols]]), persistent=False)
        self.dropout = nn.Dropout(config["dropout_prob"])
        self.init_weights()
        self.pair_weight = nn.Parameter(torch.randn(self.num_groups, self.num_groups))  # RecBole's randn

    def interaction_term(self, embeddings: torch.Tensor) -> torch.Tensor:
        """[B] sum over pairs of e_i * e_j * r_{G(i), G(j)} for [B, F, d] embeddings (dropout before the sum
        over d)."""
        weights = self.pair_weight[self.pair_groups[0], self.pair_groups[1]]  # [P]
        products = embeddings[:, self.pair_rows] * embeddings[:, self.pair_cols]  # [B, P, d]
        summed = (products * weights[None, :, None]).sum(dim=1)  # [B, d]
        return self.dropout(summed).sum(dim=1)

    def logit(self, interaction) -> torch.Tensor:
        return self.first_order_linear(interaction) + self.interaction_term(self.embed(interaction))


@register_model
class AFM(ContextRecommender):
    """Attentional FM (Xiao et al., 2017): first order + p . dropout(sum_pairs a_ij (e_i * e_j)), the attention
    a = softmax over pairs of h . relu(W (e_i * e_j)); ``reg_weight`` x ||W||_2 joins the loss."""

    hyper_parameters = (
        EMBEDDING_KEY,
        Key("attention_size", Int(minimum=1), 25, "Size of the attention layer."),
        Key("dropout_prob", Float(minimum=0.0, maximum=1.0), 0.3, "Dropout on the attention-pooled products."),
        Key("reg_weight", Float(minimum=0.0), 2.0, "Weight of the L2 norm of the attention weight W."),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.reg_weight = config["reg_weight"]
        rows, cols = pair_indices(self.num_feature_field)
        self.register_buffer("pair_rows", rows, persistent=False)
        self.register_buffer("pair_cols", cols, persistent=False)
        self.attention = nn.Linear(self.embedding_size, config["attention_size"], bias=False)
        self.dropout = nn.Dropout(config["dropout_prob"])
        self.init_weights()
        self.attention_h = nn.Parameter(torch.randn(config["attention_size"]))  # standard normal, as RecBole's
        self.p = nn.Parameter(torch.randn(self.embedding_size))

    def interaction_term(self, embeddings: torch.Tensor) -> torch.Tensor:
        """[B] attention-pooled pair products of [B, F, d] embeddings, projected on p."""
        products = embeddings[:, self.pair_rows] * embeddings[:, self.pair_cols]  # [B, P, d]
        scores = (torch.relu(self.attention(products)) * self.attention_h).sum(dim=2)  # [B, P]
        pooled = (torch.softmax(scores, dim=1).unsqueeze(2) * products).sum(dim=1)  # [B, d]
        return (self.dropout(pooled) * self.p).sum(dim=1)

    def logit(self, interaction) -> torch.Tensor:
        return self.first_order_linear(interaction) + self.interaction_term(self.embed(interaction))

    def regularisation(self) -> torch.Tensor:
        return self.reg_weight * self.attention.weight.norm(2)


@register_model
class PNN(ContextRecommender):
    """Product-based network (Qu et al., 2016): an MLP over the concatenated embeddings, the inner products
    <e_i, e_j> (``use_inner``) and the kernel outer products e_j^T K_ij e_i (``use_outer``) of every pair;
    ``reg_weight`` x the L2 norms of the MLP's weights joins the loss."""

    hyper_parameters = (
        EMBEDDING_KEY,
        *mlp_keys([128, 256, 128], 0.0),
        Key("use_inner", Bool(), True, "Feed the pairs' inner products to the MLP."),
        Key("use_outer", Bool(), False, "Feed the pairs' kernel outer products to the MLP."),
        Key("reg_weight", Float(minimum=0.0), 0.0, "Weight of the L2 norms of the MLP's weights."),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.use_inner, self.use_outer = config["use_inner"], config["use_outer"]
        self.reg_weight = config["reg_weight"]
        rows, cols = pair_indices(self.num_feature_field)
        self.register_buffer("pair_rows", rows, persistent=False)
        self.register_buffer("pair_cols", cols, persistent=False)
        pairs, d = len(rows), self.embedding_size
        size = self.num_feature_field * d + pairs * (int(self.use_inner) + int(self.use_outer))
        hidden = config["mlp_hidden_size"]
        self.mlp = mlp_layers([size, *hidden], config["dropout_prob"])
        self.predict_layer = nn.Linear(hidden[-1], 1)
        self.init_weights()
        if self.use_outer:  # [d, P, d], Xavier-uniform as RecBole's
            self.kernel = nn.Parameter(nn.init.xavier_uniform_(torch.empty(d, pairs, d)))

    def products(self, embeddings: torch.Tensor) -> torch.Tensor:
        """[B, F d (+ P) (+ P)]: the flattened [B, F, d] embeddings, then the inner and / or outer products."""
        left, right = embeddings[:, self.pair_rows], embeddings[:, self.pair_cols]  # [B, P, d]
        parts = [embeddings.flatten(1)]
        if self.use_inner:
            parts.append((left * right).sum(dim=2))
        if self.use_outer:  # sum_a e_j[a] sum_c K[a, k, c] e_i[c] for pair k = (i, j)
            parts.append(torch.einsum("bkc,akc,bka->bk", left, self.kernel, right))
        return torch.cat(parts, dim=1)

    def logit(self, interaction) -> torch.Tensor:
        return self.predict_layer(self.mlp(self.products(self.embed(interaction)))).squeeze(-1)

    def regularisation(self) -> torch.Tensor:
        weights = [m.weight.norm(2) for m in self.mlp if isinstance(m, nn.Linear)]
        return self.reg_weight * sum(weights, torch.zeros((), device=self.first_order_bias.device))


@register_model
class FFM(ContextRecommender):
    """Field-aware FM (Juan et al., 2016): first order + sum_{i<j} <v_{i, G(j)}, v_{j, G(i)}>, each feature with
    one embedding per field group (``fields``; none: one per feature), embedded as the shared fields are."""

    hyper_parameters = (EMBEDDING_KEY, FIELDS_KEY)

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        groups = field_groups(self.field_names, config["fields"])
        fields = self.inputs.fields
        dims = {f.name: dataset.num(f.name) for f in fields if f.type.startswith("token")}
        # The shared embedding is group 0's table; one more table per further group.
        self.field_aware = nn.ModuleList(
            FieldEmbedding(fields, dims, self.embedding_size, seq_pool="mean") for _ in range(max(groups))
        )
        rows, cols = pair_indices(self.num_feature_field)
        group = torch.tensor(groups, dtype=torch.long)
        self.register_buffer("pair_rows", rows, persistent=False)
        self.register_buffer("pair_cols", cols, persistent=False)
        self.register_buffer("pair_groups", torch.stack([group[rows], group[cols]]), persistent=False)
        self.init_weights()

    def interaction_term(self, values: list) -> torch.Tensor:
        """[B] sum over pairs (i, j) of <v_{i, G(j)}, v_{j, G(i)}> for the fields' values of ``FieldInputs``."""
        tables = torch.stack([table(values) for table in (self.embedding, *self.field_aware)])  # [G, B, F, d]
        left = tables[self.pair_groups[1], :, self.pair_rows]  # [P, B, d]: v_{i, G(j)}
        right = tables[self.pair_groups[0], :, self.pair_cols]  # v_{j, G(i)}
        return (left * right).sum(dim=(0, 2))

    def logit(self, interaction) -> torch.Tensor:
        return self.first_order_linear(interaction) + self.interaction_term(self.inputs(interaction))
