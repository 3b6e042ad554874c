"""RippleNet: user preferences propagated over the knowledge graph (Wang et al., CIKM 2018), as RecBole 1.2.1."""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recforge.config.types import Float, Int, Key
from recforge.models.base import InputType
from recforge.models.init import xavier_normal_initialization
from recforge.models.knowledge.base import KnowledgeRecommender
from recforge.registry import register_model

logger = logging.getLogger("recforge")

# full_sort_predict holds a few [users, n_items, d] tensors: users are scored in blocks of at most this many cells.
FULL_SORT_CELLS = 1 << 22


def sample_slots(counts: torch.Tensor, n_memory: int, generator: torch.Generator) -> torch.Tensor:
    """[n_users, n_memory] positions in ``[0, counts[u])`` drawn uniformly per user: with replacement where
    ``counts[u] < n_memory``, else a uniform subset without replacement (Floyd's algorithm, vectorised over users:
    one step per memory slot). Rows with ``counts[u] == 0`` hold 0 (the caller pads them)."""
    chosen = torch.zeros(len(counts), n_memory, dtype=torch.int64)
    top = (counts - 1).clamp(min=0)
    for step in range(n_memory):
        uniform = torch.rand(len(counts), generator=generator, dtype=torch.float64)
        with_replacement = torch.minimum((uniform * counts).floor().long(), top)
        last = counts - n_memory + step  # Floyd: draw from [0, last], take `last` itself if already chosen
        draw = torch.minimum((uniform * (last + 1)).floor().long(), last.clamp(min=0))
        taken = (chosen[:, :step] == draw[:, None]).any(dim=1)
        chosen[:, step] = torch.where(counts < n_memory, with_replacement, torch.where(taken, last, draw))
    return chosen


def build_ripple_sets(
    triples: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    users: torch.Tensor,
    items: torch.Tensor,
    n_users: int,
    n_entities: int,
    n_hop: int,
    n_memory: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """RecBole's ripple sets, vectorised: (heads, relations, tails) [n_users, n_hop, n_memory] and the number of
    padded users.

    Hop 0's candidates are the triples whose head is one of the user's training items (once per interaction),
    hop h's those whose head is one of hop h-1's sampled tails (with their multiplicity); ``n_memory`` candidates
    are drawn uniformly, with replacement only when there are fewer. A user without hop-0 candidates gets
    ``n_memory`` (0, 0, 0) memories; a later hop without candidates repeats the previous hop.
    """
    heads, relations, tails = triples
    by_head = torch.argsort(heads, stable=True)
    degree = torch.bincount(heads, minlength=n_entities)
    first = torch.cumsum(degree, 0) - degree  # position of each head's first triple in by_head
    order = torch.argsort(users, stable=True)
    seed_users, seeds = users[order], items[order]
    memories = torch.zeros(3, n_users, n_memory, dtype=torch.int64)
    hops = []
    for hop in range(n_hop):
        weights = degree[seeds]
        counts = torch.zeros(n_users, dtype=torch.int64).index_add_(0, seed_users, weights)
        ends = torch.cumsum(weights, 0)
        slots = sample_slots(counts, n_memory, generator) + (torch.cumsum(counts, 0) - counts)[:, None]
        seed = torch.searchsorted(ends, slots, right=True).clamp(max=max(len(seeds) - 1, 0))
        found = counts > 0
        if found.any():
            offset = slots - (ends[seed] - weights[seed])
            picked = by_head[(first[seeds[seed]] + offset).clamp(min=0, max=max(len(heads) - 1, 0))]
            drawn = torch.stack([heads[picked], relations[picked], tails[picked]])
            memories = torch.where(found[None, :, None], drawn, memories)
        if hop == 0:
            padded = int((~found).sum())
        hops.append(memories)
        seed_users = torch.arange(n_users).repeat_interleave(n_memory)
        seeds = memories[2].reshape(-1)
    stacked = torch.stack(hops, dim=2)  # [3, n_users, n_hop, n_memory]
    return stacked[0], stacked[1], stacked[2], padded


@register_model
class RippleNet(KnowledgeRecommender):
    """Score(u, i) = <v_i^(H), o_u^1 + ... + o_u^H>: the item's entity vector v_i^(0) attends, hop by hop, over the
    user's ripple set (``n_memory`` (head, relation, tail) triples per hop, drawn once at construction from the
    training items outwards, see ``build_ripple_sets``): p_m = softmax_m(<R_m h_m, v>), o^k = sum_m p_m t_m, and
    the item vector is updated after each hop, v <- W (v + o^k) (RecBole's ``transform_matrix``, d x d, no bias).
    R_r is a d x d matrix per relation (``relation_embedding`` rows of d*d).

    ``calculate_loss`` (pointwise rows with labels) returns RecBole's loss as three parts: BCE with logits of the
    scores, ``- kg_weight`` x sum over hops of the mean over the batch's memories of sigmoid(h^T R t), and
    ``reg_weight`` x (per hop RecBole's EmbLoss of the memories' h, t and R rows, over batch x n_memory rows, +
    EmbLoss of W). RecBole's yaml comments swap the two weights' descriptions; this is what its code does.

    Differences from RecBole, on purpose: memory triples are drawn from a ``torch.Generator`` seeded with ``seed``
    (RecBole: numpy's global generator; the distribution is the same). Users without training interactions are
    padded as users without hop-0 facts are (RecBole fails on them with an index error). R h and h^T R are computed
    per batch user (not per row) and grouped by relation, one [n, d] x [d, 2d] product per relation, instead of
    gathering a d x d matrix per memory: the same values with ~1/60 of the memory. The KG and L2 terms weight each
    distinct user by its number of rows, which equals RecBole's means over repeated rows.

    Reference: Hongwei Wang, Fuzheng Zhang, Jialin Wang, Miao Zhao, Wenjie Li, Xing Xie, Minyi Guo. "RippleNet:
    Propagating User Preferences on the Knowledge Graph for Recommender Systems." CIKM 2018.
    """

    input_type = InputType.POINTWISE
    hyper_parameters = (
        Key("embedding_size", Int(minimum=1), 64, "Dimension d of entity embeddings (relations are d x d)."),
        Key("n_hop", Int(minimum=1), 2, "Hops H of the ripple sets."),
        Key("n_memory", Int(minimum=1), 16, "Memories (head, relation, tail) sampled per user and hop."),
        Key("kg_weight", Float(minimum=0.0), 0.01, "Weight of the KG term (mean sigmoid(h^T R t), subtracted)."),
        Key("reg_weight", Float(minimum=0.0), 1e-7, "Weight of the L2 term of memories and transform matrix."),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        dataset = getattr(dataset, "dataset", dataset)
        self.LABEL: str = config["LABEL_FIELD"]
        self.embedding_size: int = config["embedding_size"]
        self.n_hop: int = config["n_hop"]
        self.n_memory: int = config["n_memory"]
        self.kg_weight: float = config["kg_weight"]
        self.reg_weight: float = config["reg_weight"]
        users, items = (
            torch.from_numpy(np.asarray(dataset.inter_feat[f], dtype=np.int64)) for f in (self.USER_ID, self.ITEM_ID)
        )
        generator = torch.Generator(device="cpu").manual_seed(config["seed"])
        with torch.device("cpu"):
            heads, relations, tails, padded = build_ripple_sets(
                self.triples(dataset), users, items, self.n_users, self.n_entities, self.n_hop, self.n_memory, generator
            )
        logger.info("RippleNet: %d among %d users are padded (no knowledge-graph facts at hop 0)", padded, self.n_users)
        self.register_buffer("memory_heads", heads)
        self.register_buffer("memory_relations", relations)
        self.register_buffer("memory_tails", tails)
        size = self.embedding_size
        self.entity_embedding = nn.Embedding(self.n_entities, size)
        self.relation_embedding = nn.Embedding(self.n_relations, size * size)
        self.transform_matrix = nn.Linear(size, size, bias=False)
        self.apply(xavier_normal_initialization)

    def relation_matrices(self) -> torch.Tensor:
        """R [n_relations, d, d]: (R h)_i = sum_j R[i, j] h_j, as RecBole's ``view(-1, d, d)``."""
        return self.relation_embedding.weight.view(self.n_relations, self.embedding_size, self.embedding_size)

    def relation_products(self, heads: torch.Tensor, relations: torch.Tensor, transposed: bool) -> torch.Tensor:
        """[N, d] rows R_r h (and, with ``transposed``, [N, 2d]: R_r h then h^T R_r) for head vectors [N, d]
        and relation ids [N]: rows sorted by relation, one product per relation present."""
        matrices = self.relation_matrices()
        matrices = torch.cat([matrices.transpose(1, 2), matrices], dim=2) if transposed else matrices.transpose(1, 2)
        order = torch.argsort(relations)
        groups = torch.bincount(relations, minlength=self.n_relations).tolist()
        parts = heads[order].split(groups)
        products = torch.cat([part @ matrices[r] for r, part in enumerate(parts) if len(part)])
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(len(order), device=order.device)
        return products[inverse]

    def memories(self, users: torch.Tensor, transposed: bool = False) -> tuple[torch.Tensor, ...]:
        """For users [U]: R h [U, H, M, d] (with ``transposed`` also h^T R), tails t [U, H, M, d], heads h and
        relation ids [U, H, M]."""
        relations = self.memory_relations[users]
        heads = self.entity_embedding(self.memory_heads[users])
        tails = self.entity_embedding(self.memory_tails[users])
        products = self.relation_products(heads.reshape(-1, self.embedding_size), relations.reshape(-1), transposed)
        products = products.view(*relations.shape, -1)
        if transposed:
            r_h, h_r = products.split(self.embedding_size, dim=-1)
            return r_h, tails, heads, relations, h_r
        return products, tails, heads, relations

    def propagate(self, r_h: torch.Tensor, tails: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores [B] of rows with memories R h, t [B, H, M, d] and item vectors [B, d] (RecBole's key addressing)."""
        total = None
        for hop in range(self.n_hop):
            attention = torch.softmax((r_h[:, hop] @ items.unsqueeze(-1)).squeeze(-1), dim=1)  # [B, M]
            o = (attention.unsqueeze(1) @ tails[:, hop]).squeeze(1)  # [B, d]
            items = self.transform_matrix(items + o)
            total = o if total is None else total + o
        return (items * total).sum(-1)

    def forward(self, interaction, transposed: bool = False) -> tuple[torch.Tensor, ...]:
        """Scores [B] and the memories of the batch's distinct users, with their row counts."""
        users, inverse, counts = torch.unique(interaction[self.USER_ID], return_inverse=True, return_counts=True)
        memories = self.memories(users, transposed)
        items = self.entity_embedding(interaction[self.ITEM_ID])
        return self.propagate(memories[0][inverse], memories[1][inverse], items), counts, memories

    def calculate_loss(self, interaction) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        scores, counts, (_, tails, heads, relations, h_r) = self.forward(interaction, transposed=True)
        rec_loss = F.binary_cross_entropy_with_logits(scores.float(), interaction[self.LABEL].float())
        rows = len(scores) * self.n_memory  # RecBole's batch x n_memory rows per hop
        weights = counts.float().view(-1, 1, 1)
        kg = (torch.sigmoid((h_r * tails).sum(-1).float()) * weights).sum() / rows  # sum over hops of the means
        squares = self.relation_embedding.weight.float().pow(2).sum(1)[relations]  # ||R_r||_F^2 per memory

        def norms(squared: torch.Tensor) -> torch.Tensor:  # per hop: Frobenius norm of the [rows, .] matrix
            return (squared * weights).sum(dim=(0, 2)).sqrt()

        reg = (
            norms(heads.float().pow(2).sum(-1)) + norms(tails.float().pow(2).sum(-1)) + norms(squares)
        ).sum() / rows + torch.linalg.vector_norm(self.transform_matrix.weight.float()) / self.embedding_size
        return rec_loss, -self.kg_weight * kg, self.reg_weight * reg

    def predict(self, interaction) -> torch.Tensor:
        return self.forward(interaction)[0]

    def full_sort_predict(self, interaction) -> torch.Tensor:
        """Scores [B, n_items]: the attention of every item over each user's memories, users in blocks."""
        users = interaction[self.USER_ID]
        items = self.entity_embedding.weight[: self.n_items]
        block = max(1, FULL_SORT_CELLS // (self.n_items * self.embedding_size))
        return torch.cat([self._score_all(part, items) for part in users.split(block)])

    def _score_all(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        r_h, tails = self.memories(users)[:2]
        vectors, total = items, None  # [n_items, d], then [U, n_items, d] after the first update
        for hop in range(self.n_hop):
            attention = torch.softmax(r_h[:, hop] @ vectors.transpose(-1, -2), dim=1)  # [U, M, n_items]
            o = attention.transpose(1, 2) @ tails[:, hop]  # [U, n_items, d]
            vectors = self.transform_matrix(vectors + o)
            total = o if total is None else total + o
        return (vectors * total).sum(-1)
