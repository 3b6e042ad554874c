"""The base of knowledge-aware models (RecBole's ``KnowledgeRecommender``) and what several of them share: the
knowledge graph as id tensors and per-relation projections computed in blocks of one relation."""

from __future__ import annotations

from typing import ClassVar

import torch

from recforge.models.base import Recommender
from recforge.utils.enum_type import ModelType


class KnowledgeRecommender(Recommender):
    """A model that uses the data set's knowledge graph (``KnowledgeBasedDataset``).

    Adds RecBole's attributes: ``ENTITY_ID``, ``RELATION_ID``, ``HEAD_ENTITY_ID``, ``TAIL_ENTITY_ID``,
    ``NEG_TAIL_ENTITY_ID`` (column names of triple batches), ``n_entities`` and ``n_relations`` (numbers of ids,
    padding included; entity ``i < n_items`` is item ``i``).

    ``uses_kg_batches`` tells KGTrainer whether ``calculate_loss`` reads the triple columns of RSKG batches (CKE,
    CFKG); when it does not, the recommendation loss trains on interaction batches alone.
    """

    type = ModelType.KNOWLEDGE
    trainer = "KGTrainer"
    uses_kg_batches: ClassVar[bool] = False

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.ENTITY_ID: str = config["ENTITY_ID_FIELD"]
        self.RELATION_ID: str = config["RELATION_ID_FIELD"]
        self.HEAD_ENTITY_ID: str = config["HEAD_ENTITY_ID_FIELD"]
        self.TAIL_ENTITY_ID: str = config["TAIL_ENTITY_ID_FIELD"]
        self.NEG_TAIL_ENTITY_ID: str = config["NEG_PREFIX"] + self.TAIL_ENTITY_ID
        self.n_entities: int = dataset.num(self.ENTITY_ID)
        self.n_relations: int = dataset.num(self.RELATION_ID)

    @staticmethod
    def triples(dataset) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The knowledge graph's (heads, relations, tails) as int64 tensors [n_triples]."""
        return tuple(
            torch.from_numpy(a.copy()) for a in (dataset.head_entities, dataset.relations, dataset.tail_entities)
        )

    def kg_batch(self, interaction) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(head, relation, positive tail, negative tail) ids of a triple batch, each [B]."""
        return (
            interaction[self.HEAD_ENTITY_ID],
            interaction[self.RELATION_ID],
            interaction[self.TAIL_ENTITY_ID],
            interaction[self.NEG_TAIL_ENTITY_ID],
        )


def relation_blocks(relation: torch.Tensor, n_relations: int, block: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A layout of rows in blocks of ``block`` slots that each hold rows of one relation: the slot of every row
    [len(relation)] and the relation of every block [n_blocks] (relation by relation; unused slots are padding)."""
    counts = torch.bincount(relation, minlength=n_relations)
    blocks = (counts + block - 1) // block
    order = torch.argsort(relation, stable=True)
    rank = torch.empty_like(relation)
    rank[order] = (
        torch.arange(len(relation), device=relation.device) - (torch.cumsum(counts, 0) - counts)[relation[order]]
    )
    slot = (torch.cumsum(blocks, 0) - blocks)[relation] * block + rank
    return slot, torch.repeat_interleave(torch.arange(n_relations, device=relation.device), blocks)


def project_by_relation(rows: torch.Tensor, relation: torch.Tensor, matrices: torch.Tensor, block: int = 32):
    """Rows [N, m, d] times their relation's matrix (``matrices`` [n_relations, d, k]): [N, m, k].

    The rows are laid out in blocks of ``block`` rows of one relation (``relation_blocks``) and each block meets
    its relation's matrix in one batched product: each matrix is read once per block instead of being gathered
    per row (RecBole's ``bmm`` of [N, d, k] copies, whose backward scatters N x d x k values)."""
    m, d = rows.shape[1:]
    slot, block_relation = relation_blocks(relation, len(matrices), block)
    laid_out = rows.new_zeros(len(block_relation) * block, m, d).index_copy(0, slot, rows)
    projected = torch.bmm(laid_out.view(len(block_relation), block * m, d), matrices.index_select(0, block_relation))
    return projected.view(len(block_relation) * block, m, -1).index_select(0, slot)
