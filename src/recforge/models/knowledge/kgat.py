"""KGAT: knowledge graph attention network (Wang, He, Cao, Liu and Chua, KDD 2019), RecBole's KGAT without DGL."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recforge.config.types import Float, Int, Key, ListOf, Str
from recforge.models.base import InputType
from recforge.models.init import xavier_normal_initialization
from recforge.models.knowledge.base import KnowledgeRecommender, project_by_relation, relation_blocks
from recforge.models.losses import bpr_loss, embedding_loss
from recforge.models.sparse import csr_tensor, propagate, row_pointers, sparse_pair
from recforge.models.tables import ScoreTables
from recforge.registry import register_model

BLOCK = 256  # rows per block of the per-relation projections in update_attentive_A
KG_BLOCK = 32  # triples per block of the per-relation projections of a triple batch


def ckg_structure(heads: torch.Tensor, tails: torch.Tensor, relations: torch.Tensor, n_nodes: int) -> dict:
    """Index tensors of the collaborative knowledge graph with edges (heads[k] -> tails[k], relations[k]).

    A's pattern: the distinct (head, tail) pairs as CSR (``adj_*``) and its transpose (``adj_t_*``; its values are
    A's at ``adj_t_order``). Attention: the distinct (head, relation, tail) triples, their multiplicity
    (``triple_count``), head node and pair in A; the distinct (node, relation) ends laid out relation by relation
    in blocks of ``BLOCK`` slots (``slot_node``, ``block_relation``), and the triples as a CSR over slots
    (``sddmm_*``: head slot -> tail slot). ``initial``: RecBole's initial A (per relation, each head's edges
    weigh 1 / its out-degree in that relation; summed over relations)."""
    n_relations = int(relations.max()) + 1
    # Distinct triples, sorted by (relation, head, tail); their ends as (relation, node) keys.
    triple_keys, triple_count = torch.unique((relations * n_nodes + heads) * n_nodes + tails, return_counts=True)
    t_relation, t_head = triple_keys // (n_nodes * n_nodes), triple_keys // n_nodes % n_nodes
    t_tail = triple_keys % n_nodes
    ends, end_of = torch.unique(
        torch.cat([t_relation * n_nodes + t_head, t_relation * n_nodes + t_tail]), return_inverse=True
    )
    end_relation, end_node = ends // n_nodes, ends % n_nodes
    slot, block_relation = relation_blocks(end_relation, n_relations, BLOCK)
    n_slots = len(block_relation) * BLOCK
    slot_node = end_node.new_zeros(n_slots)
    slot_node[slot] = end_node
    head_slot, tail_slot = slot[end_of[: len(triple_keys)]], slot[end_of[len(triple_keys) :]]
    order = torch.argsort(head_slot * n_slots + tail_slot)  # the SDDMM's CSR order (rows: head slots)
    head_slot, tail_slot = head_slot[order], tail_slot[order]
    t_relation, t_head, t_tail, triple_count = t_relation[order], t_head[order], t_tail[order], triple_count[order]
    # A's pattern: the distinct (head, tail) pairs.
    pairs, triple_pair = torch.unique(t_head * n_nodes + t_tail, return_inverse=True)
    # RecBole's initial A: sum over relations of D_r^-1 A_r (D_r: out-degrees counted with multiplicity).
    count = triple_count.double()
    head_relation, group = torch.unique(t_relation * n_nodes + t_head, return_inverse=True)
    degree = count.new_zeros(len(head_relation)).index_add_(0, group, count)
    initial = count.new_zeros(len(pairs)).index_add_(0, triple_pair, count / degree[group])
    adjacency = sparse_pair(pairs // n_nodes, pairs % n_nodes, initial, (n_nodes, n_nodes))
    index = torch.int32
    return {
        "adj_crow": adjacency.matrix.crow_indices(),
        "adj_col": adjacency.matrix.col_indices(),
        "adj_t_crow": adjacency.transposed.crow_indices(),
        "adj_t_col": adjacency.transposed.col_indices(),
        "adj_t_order": adjacency.order,
        "slot_node": slot_node,
        "block_relation": block_relation,
        "sddmm_crow": row_pointers(head_slot, n_slots).to(index),
        "sddmm_col": tail_slot.to(index),
        "triple_head": t_head,
        "triple_pair": triple_pair,
        "triple_count": triple_count.float(),
        "initial": initial.float(),
    }


class Aggregator(nn.Module):
    """One KGAT layer from a node's embedding e and its neighbourhood's N = (A E)_node: 'gcn' LeakyReLU(W(e + N)),
    'graphsage' LeakyReLU(W[e || N]), 'bi' LeakyReLU(W1(e + N)) + LeakyReLU(W2(e * N)); then message dropout."""

    def __init__(self, input_dim: int, output_dim: int, dropout: float, aggregator_type: str) -> None:
        super().__init__()
        self.aggregator_type = aggregator_type
        if aggregator_type == "gcn":
            self.W = nn.Linear(input_dim, output_dim)
        elif aggregator_type == "graphsage":
            self.W = nn.Linear(2 * input_dim, output_dim)
        else:
            self.W1 = nn.Linear(input_dim, output_dim)
            self.W2 = nn.Linear(input_dim, output_dim)
        self.activation = nn.LeakyReLU()
        self.message_dropout = nn.Dropout(dropout)

    def forward(self, ego: torch.Tensor, side: torch.Tensor) -> torch.Tensor:
        if self.aggregator_type == "gcn":
            out = self.activation(self.W(ego + side))
        elif self.aggregator_type == "graphsage":
            out = self.activation(self.W(torch.cat([ego, side], dim=1)))
        else:
            out = self.activation(self.W1(ego + side)) + self.activation(self.W2(ego * side))
        return self.message_dropout(out)


@register_model
class KGAT(ScoreTables, KnowledgeRecommender):
    """Embeddings propagated over the collaborative knowledge graph (CKG) with knowledge-aware attention.

    CKG: users (ids 0..n_users-1) then entities (shifted by n_users; entity i is item i), user <-> item edges of
    the training interactions with relation ``[UI-Relation]`` and the triples (reversed too with ``kg_reverse_r``),
    as RecBole's ``ckg_graph``; N = n_users + n_entities nodes. A [N, N] (a torch CSR matrix, pattern built once):
    RecBole's initial A (each relation's edges row-normalised by the head's out-degree in it, summed) until
    ``update_attentive_A`` (KGATTrainer, after each epoch) sets A[h, t] = the sum over edges h -> t of
    softmax over h's out-edges of pi(h, r, t) = (W_r e_t)^T tanh(W_r e_h + e_r) (TransR projection W_r [d, k]).

    E^(0) = [user; entity] embeddings [N, d]; E^(l+1) = aggregator(E^(l), A E^(l)) ('gcn', 'graphsage' or 'bi',
    LeakyReLU, message dropout); the final embedding is [E^(0) || norm(E^(1)) || ... ] [N, d + sum(layers)],
    score(u, i) = <e*_u, e*_i>. ``calculate_loss``: BPR + ``reg_weight`` x L2 norms (RecBole's EmbLoss) of the
    batch's final embeddings, on interaction batches; ``calculate_kg_loss``: softplus(||W_r h + r - W_r t||^2 -
    ||W_r h + r - W_r t'||^2) + ``reg_weight`` x EmbLoss, on triple batches.

    Differences from RecBole (on purpose): an edge repeated or two relations between the same head and tail get
    the sum of their softmax weights (the paper's and the original code's attention); RecBole's
    ``torch.sparse.softmax`` coalesces the repeated entries first and so takes one softmax entry of the *summed*
    scores (ml-100k: 8,814 of 249,303 edges, in 4,153 pairs, change the rows of 1,778 heads). A is a saved buffer,
    so a checkpoint restores the attention its weights were evaluated with (RecBole keeps A outside the state
    dict: its best model is tested with the last epoch's A).
    In training only the batch's rows of the last layer are computed (the loss reads no other row).

    Wang, He, Cao, Liu, Chua: "KGAT: Knowledge Graph Attention Network for Recommendation", KDD 2019.
    """

    input_type = InputType.PAIRWISE
    trainer = "KGATTrainer"
    hyper_parameters = (
        Key("embedding_size", Int(minimum=1), 64, "Dimension d of user, item and entity embeddings."),
        Key("kg_embedding_size", Int(minimum=1), 64, "Dimension k of relation embeddings (TransR's space)."),
        Key("layers", ListOf(Int(minimum=1)), [64], "Output sizes of the aggregation layers."),
        Key("mess_dropout", Float(minimum=0.0, maximum=1.0), 0.1, "Dropout rate of each layer's output."),
        Key("reg_weight", Float(minimum=0.0), 1e-05, "Weight of the L2 terms of both losses."),
        Key("aggregator_type", Str(choices=("gcn", "graphsage", "bi")), "bi", "The aggregator of the layers."),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.embedding_size: int = config["embedding_size"]
        self.kg_embedding_size: int = config["kg_embedding_size"]
        self.layers: list[int] = [self.embedding_size, *config["layers"]]
        self.aggregator_type: str = config["aggregator_type"]
        self.mess_dropout: float = config["mess_dropout"]
        self.reg_weight: float = config["reg_weight"]
        self.n_nodes = self.n_users + self.n_entities

        ckg = dataset.ckg_graph(form="coo", value_field=dataset.relation_field)
        heads, tails, relations = (
            torch.from_numpy(np.asarray(a, dtype=np.int64)) for a in (ckg.row, ckg.col, ckg.data)
        )
        keep = relations > 0  # RecBole's A leaves the padding relation out
        structure = ckg_structure(heads[keep], tails[keep], relations[keep], self.n_nodes)
        self.register_buffer("attention", structure.pop("initial"))  # A's values; saved with the weights
        for name, tensor in structure.items():
            self.register_buffer(name, tensor, persistent=False)

        self.user_embedding = nn.Embedding(self.n_users, self.embedding_size)
        self.entity_embedding = nn.Embedding(self.n_entities, self.embedding_size)
        self.relation_embedding = nn.Embedding(self.n_relations, self.kg_embedding_size)
        self.trans_w = nn.Embedding(self.n_relations, self.embedding_size * self.kg_embedding_size)
        self.aggregator_layers = nn.ModuleList(
            Aggregator(i, o, self.mess_dropout, self.aggregator_type)
            for i, o in zip(self.layers[:-1], self.layers[1:], strict=True)
        )
        self.apply(xavier_normal_initialization)

    # -- the graph ---------------------------------------------------------------------------------
    def adjacency(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A and its transpose as float32 CSR matrices [N, N]."""
        values, shape = self.attention.float(), (self.n_nodes, self.n_nodes)
        return (
            csr_tensor(self.adj_crow, self.adj_col, values, shape),
            csr_tensor(self.adj_t_crow, self.adj_t_col, values[self.adj_t_order], shape),
        )

    @torch.no_grad()
    def update_attentive_A(self) -> None:
        """A <- per-head softmax of the TransR attention scores of the current embeddings (no gradients)."""
        with torch.autocast(device_type=self.attention.device.type, enabled=False):
            d, k = self.embedding_size, self.kg_embedding_size
            ends = self.ego_embeddings().float()[self.slot_node].view(-1, BLOCK, d)
            projection = self.trans_w.weight.float()[self.block_relation].view(-1, d, k)
            projected = torch.bmm(ends, projection)  # W_r e for every (node, relation) end [blocks, BLOCK, k]
            context = (projected + self.relation_embedding.weight.float()[self.block_relation].unsqueeze(1)).tanh_()
            n_slots = len(self.slot_node)
            pattern = csr_tensor(
                self.sddmm_crow, self.sddmm_col, projected.new_zeros(len(self.sddmm_col)), (n_slots, n_slots)
            )
            scores = torch.sparse.sampled_addmm(pattern, context.view(-1, k), projected.view(-1, k).T, beta=0.0)
            scores = scores.values()  # pi(h, r, t) of every distinct triple
            maxima = scores.new_full((self.n_nodes,), -torch.inf)
            maxima.scatter_reduce_(0, self.triple_head, scores, reduce="amax")
            weights = torch.exp(scores - maxima[self.triple_head]) * self.triple_count
            totals = scores.new_zeros(self.n_nodes).index_add_(0, self.triple_head, weights)
            weights = weights / totals[self.triple_head]
            self.attention.copy_(torch.zeros_like(self.attention).index_add_(0, self.triple_pair, weights))
        self.forget_tables()

    # -- embeddings --------------------------------------------------------------------------------
    def ego_embeddings(self) -> torch.Tensor:
        """E^(0): users then entities, [N, d]."""
        return torch.cat([self.user_embedding.weight, self.entity_embedding.weight])

    def embeddings(self, nodes: torch.Tensor | None = None) -> torch.Tensor:
        """The final embeddings [len(nodes), d + sum(layers)] of ``nodes`` (all N nodes when None); the last layer
        is computed on these rows only."""
        ego = self.ego_embeddings()
        picked = ego if nodes is None else ego.index_select(0, nodes)
        parts = [picked]
        if self.aggregator_layers:
            adjacency, transposed = self.adjacency()
        last = len(self.aggregator_layers) - 1
        for depth, aggregator in enumerate(self.aggregator_layers):
            side = propagate(adjacency, ego, transposed)
            if depth == last and nodes is not None:  # the rows of ``nodes`` only
                picked = aggregator(picked, side.index_select(0, nodes))
            else:
                ego = aggregator(ego, side)
                picked = ego if nodes is None else ego.index_select(0, nodes)
            parts.append(F.normalize(picked, p=2, dim=1))
        return torch.cat([part.float() for part in parts], dim=1)

    def compute_tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(users [n_users, D], items [n_items, D]): the final embeddings' rows (the entity rows are freed)."""
        with torch.no_grad():
            final = self.embeddings().float()
        return final[: self.n_users].clone(), final[self.n_users : self.n_users + self.n_items].clone()

    # -- losses --------------------------------------------------------------------------------------
    def calculate_loss(self, interaction) -> torch.Tensor:
        user, pos, neg = interaction[self.USER_ID], interaction[self.ITEM_ID], interaction[self.NEG_ITEM_ID]
        batch = len(user)
        nodes = torch.cat([user, pos + self.n_users, neg.reshape(-1) + self.n_users])
        # Each distinct node once: one dropout draw per node, as in RecBole's forward over the whole graph.
        distinct, position = torch.unique(nodes, return_inverse=True)
        final = self.embeddings(distinct).index_select(0, position)
        user_e, pos_e, neg_e = final.split([batch, batch, neg.numel()])
        pos_scores = (user_e * pos_e).sum(-1)
        if neg.dim() == 2:
            neg_e = neg_e.view(batch, neg.shape[1], -1)
            neg_scores = torch.einsum("bd,bnd->bn", user_e, neg_e)
        else:
            neg_scores = (user_e * neg_e).sum(-1)
        return bpr_loss(pos_scores, neg_scores) + self.reg_weight * embedding_loss(user_e, pos_e, neg_e)

    def calculate_kg_loss(self, interaction) -> torch.Tensor:
        head, relation, pos_tail, neg_tail = self.kg_batch(interaction)
        entities = self.entity_embedding(torch.stack([head, pos_tail, neg_tail], dim=1))  # [B, 3, d]
        h_e, pos_t_e, neg_t_e = self.project(entities, relation).unbind(1)
        r_e = self.relation_embedding(relation)
        pos_score = ((h_e + r_e - pos_t_e) ** 2).sum(dim=1)
        neg_score = ((h_e + r_e - neg_t_e) ** 2).sum(dim=1)
        kg_loss = F.softplus(pos_score - neg_score).mean()
        return kg_loss + self.reg_weight * embedding_loss(h_e, r_e, pos_t_e, neg_t_e)

    def project(self, entities: torch.Tensor, relation: torch.Tensor) -> torch.Tensor:
        """TransR projections e W_r of ``entities`` [B, m, d] by their rows' relations [B]: [B, m, k]. Computed
        block by block (each block one relation's rows), so each relation's matrix is read once per block rather
        than copied per row (RecBole's bmm of gathered [B, d, k] matrices)."""
        matrices = self.trans_w.weight.view(self.n_relations, self.embedding_size, self.kg_embedding_size)
        return project_by_relation(entities, relation, matrices, KG_BLOCK)
