"""CKE: collaborative knowledge base embedding (Zhang et al., KDD 2016), structural knowledge only, as RecBole."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from recforge.config.types import Float, Int, Key, ListOf
from recforge.models.base import InputType
from recforge.models.init import xavier_normal_initialization
from recforge.models.knowledge.base import KnowledgeRecommender, project_by_relation
from recforge.models.losses import bpr_loss, embedding_loss
from recforge.registry import register_model


@register_model
class CKE(KnowledgeRecommender):
    """Score(u, i) = <e_u, v_i + x_i>: a user embedding against the item's own embedding plus its entity embedding,
    which TransR on the knowledge graph trains at the same time.

    ``calculate_loss`` returns (BPR of the interactions, BPR of TransR distances of the triples (the true tail
    closer than the sampled one), ``reg_weights[0]`` x L2 of the batch's user / item vectors + ``reg_weights[1]`` x
    L2 of the projected, normalised triple vectors), from RSKG batches (interactions merged with triples).
    """

    input_type = InputType.PAIRWISE
    uses_kg_batches = True
    hyper_parameters = (
        Key("embedding_size", Int(minimum=1), 64, "Dimension of user, item and entity embeddings."),
        Key("kg_embedding_size", Int(minimum=1), 64, "Dimension of relation embeddings (TransR's relation space)."),
        Key("reg_weights", ListOf(Float(minimum=0.0)), [1e-2, 1e-2], "L2 weights of the [interaction, triple] parts."),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.embedding_size: int = config["embedding_size"]
        self.kg_embedding_size: int = config["kg_embedding_size"]
        self.reg_weights: list[float] = config["reg_weights"]
        self.user_embedding = nn.Embedding(self.n_users, self.embedding_size)
        self.item_embedding = nn.Embedding(self.n_items, self.embedding_size)
        self.entity_embedding = nn.Embedding(self.n_entities, self.embedding_size)
        self.relation_embedding = nn.Embedding(self.n_relations, self.kg_embedding_size)
        self.trans_w = nn.Embedding(self.n_relations, self.embedding_size * self.kg_embedding_size)
        self.apply(xavier_normal_initialization)

    def item_vectors(self, items: torch.Tensor) -> torch.Tensor:
        """v_i + x_i for item ids of any shape (entity i is item i)."""
        return self.item_embedding(items) + self.entity_embedding(items)

    def transr(self, entities: torch.Tensor, relation: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Head, positive and negative tail vectors [B, 3, d] projected by their relation's matrix, and the
        relation vector, each L2-normalised: (h [B, k], r [B, k], t+ [B, k], t- [B, k])."""
        matrices = self.trans_w.weight.view(self.n_relations, self.embedding_size, self.kg_embedding_size)
        h_e, pos_e, neg_e = F.normalize(project_by_relation(entities, relation, matrices), p=2, dim=2).unbind(1)
        return h_e, F.normalize(self.relation_embedding(relation), p=2, dim=1), pos_e, neg_e

    def calculate_loss(self, interaction) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        user_e = self.user_embedding(interaction[self.USER_ID])
        pos, neg = interaction[self.ITEM_ID], interaction[self.NEG_ITEM_ID]
        head, relation, pos_tail, neg_tail = self.kg_batch(interaction)
        # One lookup per table: each lookup's backward writes a gradient the size of the whole table.
        items = torch.cat([pos, neg])
        entities = self.entity_embedding(torch.cat([items, torch.stack([head, pos_tail, neg_tail], dim=1).view(-1)]))
        item_e = self.item_embedding(items) + entities[: len(items)]
        pos_e, neg_e = item_e.split([len(pos), len(neg)])
        rec_loss = bpr_loss((user_e * pos_e).sum(-1), (user_e * neg_e).sum(-1))
        h_e, r_e, pos_t_e, neg_t_e = self.transr(entities[len(items) :].view(len(head), 3, -1), relation)
        pos_distance = ((h_e + r_e - pos_t_e) ** 2).sum(dim=1)
        neg_distance = ((h_e + r_e - neg_t_e) ** 2).sum(dim=1)
        kg_loss = bpr_loss(neg_distance, pos_distance)
        reg_loss = self.reg_weights[0] * embedding_loss(user_e, pos_e, neg_e) + self.reg_weights[1] * embedding_loss(
            h_e, r_e, pos_t_e, neg_t_e
        )
        return rec_loss, kg_loss, reg_loss

    def predict(self, interaction) -> torch.Tensor:
        user_e = self.user_embedding(interaction[self.USER_ID])
        return (user_e * self.item_vectors(interaction[self.ITEM_ID])).sum(-1)

    def full_sort_predict(self, interaction) -> torch.Tensor:
        items = self.item_embedding.weight + self.entity_embedding.weight[: self.n_items]
        return self.user_embedding(interaction[self.USER_ID]) @ items.T
