"""MKR: multi-task feature learning for knowledge-graph-enhanced recommendation (Wang et al., WWW 2019), as RecBole
1.2.1."""

from __future__ import annotations

import itertools
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from recforge.config.types import Bool, Float, Int, Key
from recforge.models.base import InputType
from recforge.models.init import xavier_normal_initialization
from recforge.models.knowledge.base import KnowledgeRecommender
from recforge.registry import register_model

# Scoring with the MLP tower holds [users, n_items, 2d] tensors: users are scored in blocks of at most this many cells.
FULL_SORT_CELLS = 1 << 22


def sigmoid_mlp(sizes: list[int], dropout: float) -> nn.Sequential:
    """RecBole's ``MLPLayers(sizes, dropout, "sigmoid")``: (dropout, linear, sigmoid) per consecutive pair of sizes
    (none for a single size: the identity)."""
    layers: list[nn.Module] = []
    for size_in, size_out in itertools.pairwise(sizes):
        layers += [nn.Dropout(dropout), nn.Linear(size_in, size_out), nn.Sigmoid()]
    return nn.Sequential(*layers)


def linears(mlp: nn.Sequential) -> list[nn.Linear]:
    return [m for m in mlp if isinstance(m, nn.Linear)]


class CrossCompressUnit(nn.Module):
    """C = v e^T [B, d, d]; v' = C w_vv + C^T w_ev + b_vv + b_ev and e' = C w_ve + C^T w_ee + b_ve + b_ee (scalar
    biases, as RecBole), computed without C: C w = v <e, w> and C^T w = e <v, w>."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc_vv, self.fc_ev, self.fc_ve, self.fc_ee = (nn.Linear(dim, 1) for _ in range(4))

    def forward(self, pair: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        v, e = pair
        v_out = v * (e @ self.fc_vv.weight.T) + e * (v @ self.fc_ev.weight.T) + (self.fc_vv.bias + self.fc_ev.bias)
        e_out = v * (e @ self.fc_ve.weight.T) + e * (v @ self.fc_ee.weight.T) + (self.fc_ve.bias + self.fc_ee.bias)
        return v_out, e_out


@register_model
class MKR(KnowledgeRecommender):
    """Items and their entities share features through ``low_layers_num`` cross&compress units (v, e) -> (v', e').

    RS tower: u = MLP_L(user embedding) (L sigmoid layers), score(u, i) = <u, v'_i> with ``use_inner_product``,
    else MLP([2d] x (H-1) sigmoid layers, then 2d -> 1 sigmoid)([u; v'_i]) (H = ``high_layers_num``); predict
    returns that score and ``calculate_rs_loss`` (pointwise rows) BCE with logits of it + ``reg_weight`` x
    (||u||^2 + ||v'||^2) / 2 summed over the batch.

    KG tower (``calculate_kg_loss``, triple batches): t_pred = sigmoid(sigmoid(W [MLP_{H-1}([e'_h; r])] + b)) [B, d],
    score = sigmoid(<MLP_L(tail embedding), t_pred>), loss = sum over the batch of (- score + ``reg_weight`` x the
    batch's (||e'_h||^2 + ||t||^2) / 2), i.e. RecBole's broadcast: the L2 term counted once per triple. The loss
    is negative by design: MKR's KGE task maximises the true triples' scores (no negative tails), so it lies in
    [-B, 0) plus the L2 term.

    Kept from RecBole (which replaced the original's relu activations by sigmoids): the MLP tower's score is a
    sigmoid output that BCE with logits passes through a second sigmoid (predicted probabilities in (0.5, 0.73)),
    and with ``low_layers_num`` >= 1 the tails are sigmoid outputs, so <t, t_pred> is about d / 3 and the KG score
    starts saturated at 1 in float32 (ml-100k: the first KG epoch's score term is exactly -91,631, the number of
    triples); the KG task then trains through its L2 term only.

    ``full_sort_predict`` computes the item side (cross&compress of every item with its entity, which does not
    depend on the user) once per call, then scores [B, n_items] (a product for the inner product; for the MLP the
    first layer is split into a user part and an item part). It applies no dropout (evaluation mode).
    ``kg_embedding_size`` is declared as in RecBole's yaml and, as there, unused (relations have ``embedding_size``).

    Reference: Hongwei Wang, Fuzheng Zhang, Miao Zhao, Wenjie Li, Xing Xie, Minyi Guo. "Multi-Task Feature Learning
    for Knowledge Graph Enhanced Recommendation." WWW 2019.
    """

    input_type = InputType.POINTWISE
    trainer = "MKRTrainer"
    # The L2 terms and the KG score sum over the batch (the KG L2 is also multiplied by the batch size: that part
    # follows one process only approximately with several).
    loss_reductions: ClassVar[dict[str, str | tuple[str, ...]]] = {
        "calculate_rs_loss": ("mean", "sum"),
        "calculate_kg_loss": ("sum", "sum"),
    }
    hyper_parameters = (
        Key("embedding_size", Int(minimum=1), 64, "Dimension d of user, item, entity and relation embeddings."),
        Key("kg_embedding_size", Int(minimum=1), 64, "Declared by RecBole's MKR.yaml; unused there and here."),
        Key("low_layers_num", Int(minimum=0), 1, "L: cross&compress units and layers of the user and tail MLPs."),
        Key("high_layers_num", Int(minimum=0), 1, "H: the RS and KG towers have H - 1 layers of size 2d (0: none)."),
        Key("reg_weight", Float(minimum=0.0), 1e-6, "Weight of the L2 terms (sum of squares / 2)."),
        Key("use_inner_product", Bool(), True, "Score by <u, v> (else by the RS MLP tower)."),
        Key("kge_interval", Int(minimum=1), 3, "Epochs between KG-task epochs (from epoch 0)."),
        Key("dropout_prob", Float(minimum=0.0, maximum=1.0), 0.0, "Dropout before every linear layer."),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.LABEL: str = config["LABEL_FIELD"]
        self.embedding_size: int = config["embedding_size"]
        self.reg_weight: float = config["reg_weight"]
        self.use_inner_product: bool = config["use_inner_product"]
        size, low, high, dropout = (
            self.embedding_size,
            config["low_layers_num"],
            config["high_layers_num"],
            config["dropout_prob"],
        )
        self.user_embeddings_lookup = nn.Embedding(self.n_users, size)
        self.item_embeddings_lookup = nn.Embedding(self.n_entities, size)  # RecBole's size: heads index it too
        self.entity_embeddings_lookup = nn.Embedding(self.n_entities, size)
        self.relation_embeddings_lookup = nn.Embedding(self.n_relations, size)
        self.user_mlp = sigmoid_mlp([size] * (low + 1), dropout)
        self.tail_mlp = sigmoid_mlp([size] * (low + 1), dropout)
        self.cc_unit = nn.Sequential(*(CrossCompressUnit(size) for _ in range(low)))
        self.kge_mlp = sigmoid_mlp([size * 2] * high, dropout)
        self.kge_pred_mlp = sigmoid_mlp([size * 2, size], dropout)
        if not self.use_inner_product:
            self.rs_pred_mlp = sigmoid_mlp([size * 2, 1], dropout)
            self.rs_mlp = sigmoid_mlp([size * 2] * high, dropout)
        self.apply(xavier_normal_initialization)

    def items_and_heads(self, items: torch.Tensor, heads: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(v', e') [B, d]: the items' and the heads' embeddings through the cross&compress units."""
        pair = (self.item_embeddings_lookup(items), self.entity_embeddings_lookup(heads))
        return self.cc_unit(pair) if len(self.cc_unit) else pair

    def rs_scores(self, users: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Scores [B] of (user, item) rows, with u and v' [B, d]."""
        user_e = self.user_mlp(self.user_embeddings_lookup(users))
        item_e = self.items_and_heads(items, items)[0]
        if self.use_inner_product:
            return (user_e * item_e).sum(-1), user_e, item_e
        hidden = self.rs_mlp(torch.cat([user_e, item_e], dim=1))
        return self.rs_pred_mlp(hidden).squeeze(-1), user_e, item_e

    def calculate_rs_loss(self, interaction) -> tuple[torch.Tensor, torch.Tensor]:
        scores, user_e, item_e = self.rs_scores(interaction[self.USER_ID], interaction[self.ITEM_ID])
        bce = F.binary_cross_entropy_with_logits(scores.float(), interaction[self.LABEL].float())
        l2 = (user_e.float().pow(2).sum() + item_e.float().pow(2).sum()) / 2
        return bce, self.reg_weight * l2

    def calculate_kg_loss(self, interaction) -> tuple[torch.Tensor, torch.Tensor]:
        heads = interaction[self.HEAD_ENTITY_ID]
        head_e = self.items_and_heads(heads, heads)[1]
        tail_e = self.tail_mlp(self.entity_embeddings_lookup(interaction[self.TAIL_ENTITY_ID]))
        relation_e = self.relation_embeddings_lookup(interaction[self.RELATION_ID])
        tail_pred = torch.sigmoid(self.kge_pred_mlp(self.kge_mlp(torch.cat([head_e, relation_e], dim=1))))
        scores = torch.sigmoid((tail_e * tail_pred).sum(-1).float())
        l2 = (head_e.float().pow(2).sum() + tail_e.float().pow(2).sum()) / 2
        return -scores.sum(), len(scores) * self.reg_weight * l2

    def calculate_loss(self, interaction) -> tuple[torch.Tensor, torch.Tensor]:
        """The RS loss (what MKRTrainer trains every epoch on interaction batches)."""
        return self.calculate_rs_loss(interaction)

    def predict(self, interaction) -> torch.Tensor:
        return self.rs_scores(interaction[self.USER_ID], interaction[self.ITEM_ID])[0]

    def full_sort_predict(self, interaction) -> torch.Tensor:
        user_e = self.user_mlp(self.user_embeddings_lookup(interaction[self.USER_ID]))
        ids = torch.arange(self.n_items, device=user_e.device)
        item_e = self.items_and_heads(ids, ids)[0]  # [n_items, d], the same for every user
        if self.use_inner_product:
            return user_e @ item_e.T
        layers = [*linears(self.rs_mlp), *linears(self.rs_pred_mlp)]
        first, rest = layers[0], layers[1:]
        size = self.embedding_size
        user_part = user_e @ first.weight[:, :size].T  # the first layer of [u; v] split in two
        item_part = item_e @ first.weight[:, size:].T + first.bias
        if not rest:
            return torch.sigmoid(user_part + item_part.T)
        block = max(1, FULL_SORT_CELLS // (self.n_items * 2 * size))
        scores = []
        for part in user_part.split(block):
            hidden = torch.sigmoid(part.unsqueeze(1) + item_part)  # [U, n_items, 2d]
            for layer in rest:
                hidden = torch.sigmoid(layer(hidden))
            scores.append(hidden.squeeze(-1))
        return torch.cat(scores)
