"""CFKG: collaborative filtering on a unified knowledge graph of users, items and entities (Ai et al., Algorithms
2018), as RecBole 1.2.1."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from recforge.config.types import Float, Int, Key, Str
from recforge.models.base import InputType
from recforge.models.init import xavier_normal_initialization
from recforge.models.knowledge.base import KnowledgeRecommender
from recforge.registry import register_model


@register_model
class CFKG(KnowledgeRecommender):
    """Users, entities (items included) and relations in one space; a user buys an item along an extra ``buy``
    relation, the last row of the relation table (index ``n_relations``, after the data set's own relations).

    The score of a triple (h, r, t) is ``<h + r, t>`` (``loss_function: inner_product``) or ``-|h + r - t|_2``
    (``transe``); a user-item score is that of (u, buy, i). ``calculate_loss`` reads RSKG batches (interactions
    merged with triples): the batch's B interaction triples (user, buy, positive item / negative item) and its B'
    knowledge triples (head, relation, true tail / sampled tail) form one batch of B + B' anchors ``h + r`` [B + B', d]
    with a positive and a negative tail each; the loss is its mean of ``softplus(-<a, t+>) + softplus(<a, t->)``
    (inner product) or of torch's triplet margin loss ``max(|a - t+| - |a - t-| + margin, 0)`` (transe, L2
    distances with torch's eps 1e-6, as RecBole's ``nn.TripletMarginLoss``). No extra regularisation.
    """

    input_type = InputType.PAIRWISE
    uses_kg_batches = True
    hyper_parameters = (
        Key("embedding_size", Int(minimum=1), 64, "Dimension of user, entity and relation embeddings."),
        Key(
            "loss_function",
            Str(choices=("inner_product", "transe")),
            "inner_product",
            "Triple score and loss: softplus of inner products, or TransE distances with a margin.",
        ),
        Key("margin", Float(minimum=0.0), 1.0, "Margin of the transe triplet loss (unused by inner_product)."),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.embedding_size: int = config["embedding_size"]
        self.loss_function: str = config["loss_function"]
        self.margin: float = config["margin"]
        self.user_embedding = nn.Embedding(self.n_users, self.embedding_size)
        self.entity_embedding = nn.Embedding(self.n_entities, self.embedding_size)
        self.relation_embedding = nn.Embedding(self.n_relations + 1, self.embedding_size)  # + the buy relation
        self.apply(xavier_normal_initialization)

    def user_anchors(self, users: torch.Tensor) -> torch.Tensor:
        """u + r_buy of user ids [B] -> [B, d]."""
        return self.user_embedding(users) + self.relation_embedding.weight[-1]

    def triple_scores(self, anchors: torch.Tensor, tails: torch.Tensor) -> torch.Tensor:
        """Scores of anchors h + r [B, d] against tails [B, d]: <a, t> or -|a - t|_2."""
        if self.loss_function == "transe":
            return -torch.linalg.vector_norm(anchors - tails, ord=2, dim=1)
        return (anchors * tails).sum(1)

    def calculate_loss(self, interaction) -> torch.Tensor:
        heads, relations, pos_tails, neg_tails = self.kg_batch(interaction)
        users, pos_items, neg_items = (interaction[f] for f in (self.USER_ID, self.ITEM_ID, self.NEG_ITEM_ID))
        # One lookup of the entity table (each lookup of a dense embedding adds a full-table gradient in backward).
        ids = torch.cat([heads, pos_items, pos_tails, neg_items, neg_tails])
        head_e, pos_item_e, pos_tail_e, neg_item_e, neg_tail_e = self.entity_embedding(ids).split(
            [len(heads), len(users), len(heads), len(users), len(heads)]
        )
        # Interaction rows first, then triple rows, as RecBole concatenates them.
        anchors = torch.cat([self.user_anchors(users), head_e + self.relation_embedding(relations)])
        positives = torch.cat([pos_item_e, pos_tail_e])
        negatives = torch.cat([neg_item_e, neg_tail_e])
        if self.loss_function == "transe":
            return F.triplet_margin_loss(anchors, positives, negatives, margin=self.margin, p=2)
        pos_scores = (anchors * positives).sum(1)
        neg_scores = (anchors * negatives).sum(1)
        return (F.softplus(-pos_scores) + F.softplus(neg_scores)).mean()

    def predict(self, interaction) -> torch.Tensor:
        anchors = self.user_anchors(interaction[self.USER_ID])
        return self.triple_scores(anchors, self.entity_embedding(interaction[self.ITEM_ID]))

    def full_sort_predict(self, interaction) -> torch.Tensor:
        """Scores [B, n_items]: one product ``(u + r_buy) E_items^T``, or for transe the distances
        ``sqrt(|a|^2 + |t|^2 - 2 a . t)`` from one product in float64 (exact to float32 rounding, as ``predict``'s;
        torch.cdist's exact mode is 14x slower, its float32 product loses digits to cancellation)."""
        anchors = self.user_anchors(interaction[self.USER_ID])
        items = self.entity_embedding.weight[: self.n_items]
        if self.loss_function == "transe":
            with torch.autocast(device_type=anchors.device.type, enabled=False):
                a, t = anchors.double(), items.double()
                squared = (a**2).sum(1, keepdim=True) + (t**2).sum(1) - 2 * a @ t.T
                return -squared.clamp(min=0).sqrt().to(anchors.dtype)
        return anchors @ items.T
