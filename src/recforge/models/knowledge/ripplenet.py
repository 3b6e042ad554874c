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
from recforge.models.knowledge.base import KnowledgeRecommender, project_by_relation
from recforge.registry import register_model

logger = logging.getLogger("recforge")

# full_sort_predict holds a few [users, n_memory, n_items] tensors: users are scored in blocks of at most this many
# cells.
FULL_SORT_CELLS = 1 << 20
# relation_products multiplies rows by their relation's matrix in blocks of this many rows of one relation.
RELATION_BLOCK = 64


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

    Differences from RecBole, on purpose: hop h > 0 expands from the ids of hop h-1's sampled tails. RecBole
    means to, but looks the tails up as 0-dim tensors in a dict keyed by ints (``entity not in self.kg``, a tensor
    hashes by identity), finds none, and so repeats hop 0 at every later hop (all 943 users on ml-100k). Memories
    are drawn from a ``torch.Generator`` seeded with ``seed`` (RecBole: numpy's global generator; the same
    distribution). Users without training interactions are padded as users without hop-0 facts are (RecBole fails
    on them with an index error). R h and h^T R are computed once per distinct user of the batch (not per row),
    in blocks of 64 memories of one relation (one batched product), instead of gathering a d x d matrix per memory
    (RecBole: [batch x n_memory, d^2] per hop, 512 MiB at batch 2048, d = 64). The KG and L2 terms weight each
    distinct user by its number of rows, which equals RecBole's means over the repeated rows. ``full_sort_predict``
    is batched over all items (RecBole loops over the users' ripple sets in Python); it gives ``predict``'s values.

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
        self.register_buffer("memory_heads", heads)
        self.register_buffer("memory_relations", relations)
        self.register_buffer("memory_tails", tails)
        size = self.embedding_size
        self.entity_embedding = nn.Embedding(self.n_entities, size)
        self.relation_embedding = nn.Embedding(self.n_relations, size * size)
        self.transform_matrix = nn.Linear(size, size, bias=False)
        self.apply(xavier_normal_initialization)
        if not self.entity_embedding.weight.is_meta:  # not the size probe on the meta device
            logger.info(
                "RippleNet: %d of %d users are padded (no knowledge-graph facts at hop 0)", padded, self.n_users
            )

    def relation_matrices(self) -> torch.Tensor:
        """R [n_relations, d, d]: (R h)_i = sum_j R[i, j] h_j, as RecBole's ``view(-1, d, d)``."""
        return self.relation_embedding.weight.view(self.n_relations, self.embedding_size, self.embedding_size)

    def relation_products(self, heads: torch.Tensor, relations: torch.Tensor, transposed: bool) -> torch.Tensor:
        """[N, d] rows R_r h (and, with ``transposed``, [N, 2d]: R_r h then h^T R_r) for head vectors [N, d]
        and relation ids [N]. The rows are laid out by relation in blocks of ``RELATION_BLOCK`` rows (a relation's
        last block padded with zeros; ``project_by_relation``): no d x d matrix gathered per row."""
        matrices = self.relation_matrices()
        matrices = torch.cat([matrices.transpose(1, 2), matrices], dim=2) if transposed else matrices.transpose(1, 2)
        return project_by_relation(heads.unsqueeze(1), relations, matrices, RELATION_BLOCK).squeeze(1)

    def memories(self, users: torch.Tensor, transposed: bool = False) -> tuple[torch.Tensor, ...]:
        """For users [U], hop-major: R h [H, U, M, d] (with ``transposed`` also h^T R), tails t [H, U, M, d],
        heads h [H, U, M, d] and relation ids [H, U, M]."""
        relations = self.memory_relations[users].transpose(0, 1)
        heads = self.entity_embedding(self.memory_heads[users].transpose(0, 1))
        tails = self.entity_embedding(self.memory_tails[users].transpose(0, 1))
        products = self.relation_products(heads.reshape(-1, self.embedding_size), relations.reshape(-1), transposed)
        products = products.view(*relations.shape, -1)
        if transposed:
            r_h, h_r = products.split(self.embedding_size, dim=-1)
            return r_h, tails, heads, relations, h_r
        return products, tails, heads, relations

    def propagate(
        self, r_h: torch.Tensor, tails: torch.Tensor, items: torch.Tensor, rows: torch.Tensor
    ) -> torch.Tensor:
        """Scores [B] of item vectors [B, d] against the memories R h, t [H, U, M, d] of their users (index
        ``rows`` [B] into U): RecBole's key addressing and item update, hop by hop."""
        total = None
        for r_h_hop, tails_hop in zip(r_h.unbind(0), tails.unbind(0), strict=True):
            keys, values = r_h_hop.index_select(0, rows), tails_hop.index_select(0, rows)  # [B, M, d]
            attention = torch.softmax((keys * items.unsqueeze(1)).sum(-1), dim=1)  # [B, M]
            o = (attention.unsqueeze(-1) * values).sum(1)  # [B, d]
            items = self.transform_matrix(items + o)
            total = o if total is None else total + o
        return (items * total).sum(-1)

    def forward(self, interaction, transposed: bool = False) -> tuple[torch.Tensor, ...]:
        """Scores [B] and the memories of the batch's distinct users (``memories``), with their row counts."""
        users, rows, counts = torch.unique(interaction[self.USER_ID], return_inverse=True, return_counts=True)
        memories = self.memories(users, transposed)
        items = self.entity_embedding(interaction[self.ITEM_ID])
        return self.propagate(memories[0], memories[1], items, rows), counts, memories

    def calculate_loss(self, interaction) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        scores, counts, (_, tails, heads, relations, h_r) = self.forward(interaction, transposed=True)
        rec_loss = F.binary_cross_entropy_with_logits(scores.float(), interaction[self.LABEL].float())
        rows = len(scores) * self.n_memory  # RecBole's batch x n_memory rows per hop
        weights = counts.float().view(1, -1, 1)
        kg = (torch.sigmoid((h_r * tails).sum(-1).float()) * weights).sum() / rows  # sum over hops of the means
        squares = self.relation_embedding.weight.float().pow(2).sum(1)[relations]  # ||R_r||_F^2 per memory

        def norms(squared: torch.Tensor) -> torch.Tensor:  # per hop: Frobenius norm of the [rows, .] matrix
            return (squared * weights).sum(dim=(1, 2)).sqrt()

        reg = (
            norms(heads.float().pow(2).sum(-1)) + norms(tails.float().pow(2).sum(-1)) + norms(squares)
        ).sum() / rows + torch.linalg.vector_norm(self.transform_matrix.weight.float()) / self.embedding_size
        return rec_loss, -self.kg_weight * kg, self.reg_weight * reg

    def predict(self, interaction) -> torch.Tensor:
        return self.forward(interaction)[0]

    def full_sort_predict(self, interaction) -> torch.Tensor:
        """Scores [B, n_items], users in blocks, without forming per-user item vectors [n_items, d]: the item
        vector after k hops is linear in the attention weights A_j [M, n_items] of the earlier hops,
        v_k = W^k v_0 + sum_(j<k) sum_m A_j[m] W^(k-j) t_j[m], so the logits <R h_k[m], v_k> and the score
        <v_H, o_1 + ... + o_H> are products of per-user [M, d] and [M, M] matrices with v_0 and the A_j (the same
        values as ``predict``, with less than half of its arithmetic for d = 64, M = 16)."""
        users = interaction[self.USER_ID]
        block = max(1, FULL_SORT_CELLS // (self.n_memory * self.n_items))
        return torch.cat([self._score_all(part) for part in users.split(block)])

    def _score_all(self, users: torch.Tensor) -> torch.Tensor:
        keys, tails = self.memories(users)[:2]  # [H, U, M, d]
        items = self.entity_embedding.weight[: self.n_items].T  # v_0 [d, n_items]
        powers = [torch.eye(self.embedding_size, dtype=items.dtype, device=items.device)]
        for _ in range(self.n_hop):
            powers.append(powers[-1] @ self.transform_matrix.weight)  # W^k
        attention: list[torch.Tensor] = []  # A_k [U, M, n_items]
        for k in range(self.n_hop):
            logits = keys[k] @ powers[k] @ items
            for j in range(k):
                logits = logits + keys[k] @ powers[k - j] @ tails[j].transpose(1, 2) @ attention[j]
            attention.append(torch.softmax(logits, dim=1))
        scores = None
        for k in range(self.n_hop):  # o_k = sum_m A_k[m] t_k[m] against v_H
            mixed = tails[k] @ powers[self.n_hop] @ items
            for j in range(self.n_hop):
                mixed = mixed + tails[k] @ powers[self.n_hop - j] @ tails[j].transpose(1, 2) @ attention[j]
            part = (attention[k] * mixed).sum(1)
            scores = part if scores is None else scores + part
        return scores
