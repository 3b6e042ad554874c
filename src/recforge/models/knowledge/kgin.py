"""KGIN: knowledge graph-based intent network (Wang et al., WWW 2021), RecBole 1.2.1's ``KGIN``."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recforge.config.types import Float, Int, Key, Str
from recforge.errors import ConfigError
from recforge.models.base import InputType
from recforge.models.graph import training_edges
from recforge.models.init import xavier_uniform_initialization
from recforge.models.knowledge.base import KnowledgeRecommender
from recforge.models.losses import bpr_loss
from recforge.models.sparse import SparseOperator, sparse_pair
from recforge.models.tables import ScoreTables
from recforge.registry import register_model

INDEPENDENCE = ("cosine", "distance", "mi")


def _entries(rows: np.ndarray, cols: np.ndarray, n_cols: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (row, col) pairs of edges, sorted: (rows, cols, multiplicities, entry of each edge)."""
    keys, entry, counts = np.unique(rows * n_cols + cols, return_inverse=True, return_counts=True)
    return keys // n_cols, keys % n_cols, counts, entry


def independence_loss(weights: torch.Tensor, kind: str, temperature: float) -> torch.Tensor:
    """The independence of the intents' relation weights ``weights`` [n_factors, n_relations] (float32):
    'cosine': sum over pairs i < j of cos(w_i, w_j)^2; 'distance': sum over pairs of the distance correlation of
    w_i and w_j (the relations as samples); 'mi': -sum_i log softmax_j(cos(w_i, w_j) / temperature)_i."""
    if kind == "mi":
        unit = F.normalize(weights, dim=1)
        return -torch.log_softmax(unit @ unit.T / temperature, dim=1).diagonal().sum()
    if kind == "cosine":
        unit = F.normalize(weights, dim=1)
        return (unit @ unit.T).triu(1).pow(2).sum()
    # Distance correlation: per intent the double-centred distance matrix of its entries, [n_factors, C, C].
    channels = weights.shape[1]
    column, row = weights.unsqueeze(2), weights.unsqueeze(1)
    distance = torch.sqrt(torch.clamp(column**2 - 2 * column * row + row**2, min=0) + 1e-8)
    centred = (
        distance
        - distance.mean(dim=1, keepdim=True)
        - distance.mean(dim=2, keepdim=True)
        + distance.mean(dim=(1, 2), keepdim=True)
    )
    products = torch.einsum("ikl,jkl->ij", centred, centred) / channels**2
    dcov = torch.sqrt(torch.clamp(products, min=0) + 1e-8)  # [n_factors, n_factors]
    own = dcov.diagonal()
    return (dcov / torch.sqrt(own[:, None] * own[None, :] + 1e-8)).triu(1).sum()


@register_model
class KGIN(ScoreTables, KnowledgeRecommender):
    """Users' intents over the knowledge graph's relations, propagated along relational paths (Wang, Huang, Wang,
    Yuan, Liu, He and Chua, "Learning Intents behind Interactions with Knowledge Graph for Recommendation",
    WWW 2021).

    Each of ``n_factors`` intents is a vector ``softmax(W_p) @ R`` [n_factors, d] over the relation embeddings
    R [n_relations, d] (W [n_factors, n_relations]). Per hop, from entity embeddings E [n_entities, d] and user
    embeddings U [n_users, d]:

    - entities: ``E'_h = mean over the triples (h, r, t) of E_t * R_r`` (0 for entities that head no triple);
    - users: ``U'_u = (1 + softmax(U_u @ L^T) @ intents) * (sum over u's distinct items i of E_i / deg(u))``, the
      attention of user u over the intents from its current embedding and the intent embeddings L [n_factors, d];

    then message dropout and L2 normalisation of every row; the output is the sum of the layer-0 embeddings and the
    ``context_hops`` layers. score(u, i) = <U_u, E_i> (entity i is item i), [B] or [B, n_items], from embeddings
    propagated once per evaluation without dropout.

    Loss (a tuple whose sum is RecBole's): BPR on those scores, ``reg_weight`` x RecBole's EmbLoss of the batch's
    propagated user / positive / negative vectors, ``sim_regularity`` x the independence loss of W (``ind``).
    While training, node dropout keeps a uniform random subset of ``int(T * (1 - node_dropout_rate))`` of the T
    triples (RecBole's edge sampling) and drops each user-item entry with probability ``node_dropout_rate``,
    scaling the kept ones by ``1 / (1 - node_dropout_rate)``; predictions use the whole graph.

    Deviations from RecBole (bugs there): RecBole also samples the triples when it predicts (evaluation scores
    are random); it drops the user-item entries at ``mess_dropout_rate`` instead (a typo: its default 0 never
    drops); its edge sampling keeps ``int(T * node_dropout_rate)`` triples, the inverse of a dropout rate (the
    same number at the default 0.5). The 'mi' loss is computed through log-softmax (equal, never overflows).

    Computation (the same values, no torch_scatter): the mean over a head's triples is sum_r R_r * (sum of its
    tails E_t under r) / c_h, sparse products over the distinct (head, relation) pairs in float32; hops after the
    first run on the rows of the entities that head a triple (every other entity is 0 there); the intents are
    computed once per pass instead of once per hop.
    """

    input_type = InputType.PAIRWISE
    uses_kg_batches = False
    hyper_parameters = (
        Key("embedding_size", Int(minimum=1), 64, "Dimension of user, entity, relation and intent embeddings."),
        Key("reg_weight", Float(minimum=0.0), 1e-05, "Weight of the L2 norms of the batch's propagated vectors."),
        Key("node_dropout_rate", Float(minimum=0.0, maximum=1.0), 0.5, "Share of triples and interactions dropped."),
        Key("mess_dropout_rate", Float(minimum=0.0, maximum=1.0), 0.0, "Dropout of each hop's output embeddings."),
        Key("sim_regularity", Float(minimum=0.0), 1e-04, "Weight of the intents' independence loss."),
        Key("context_hops", Int(minimum=0), 2, "Number of propagation hops."),
        Key("n_factors", Int(minimum=1), 4, "Number of user intents."),
        Key("ind", Str(choices=INDEPENDENCE), "cosine", "Independence loss of the intents: cosine, distance or mi."),
        Key("temperature", Float(minimum=0.0, exclusive_minimum=True), 0.2, "Temperature of the 'mi' loss."),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.embedding_size: int = config["embedding_size"]
        self.reg_weight: float = config["reg_weight"]
        self.node_dropout_rate: float = config["node_dropout_rate"]
        self.mess_dropout_rate: float = config["mess_dropout_rate"]
        self.sim_decay: float = config["sim_regularity"]
        self.context_hops: int = config["context_hops"]
        self.n_factors: int = config["n_factors"]
        self.ind: str = config["ind"]
        self.temperature: float = config["temperature"]
        if self.node_dropout_rate >= 1:
            raise ConfigError(f"config key 'node_dropout_rate': {self.node_dropout_rate} must be below 1")

        # Knowledge graph, one edge per triple (repeats included), aggregated at its head: E'_h = (1 / c_h) x
        # sum_r R_r * (sum of E_t over h's triples with relation r), the inner sums a sparse product over the
        # distinct (head, relation) pairs. After hop 0 only the entities that head a triple are non-zero (a mean
        # over no edge is 0, and so is its normalisation): hops run on those "head slots" only.
        heads, relations, tails = (t.numpy() for t in self.triples(dataset))
        head_ids, head_slot = np.unique(heads, return_inverse=True)
        self.n_heads: int = len(head_ids)
        slot_of = np.full(self.n_entities, self.n_heads, dtype=np.int64)  # n_heads: not a head
        slot_of[head_ids] = np.arange(self.n_heads)
        pairs, pair_of_triple = np.unique(head_slot * self.n_relations + relations, return_inverse=True)
        n_pairs, pair_head = len(pairs), pairs // self.n_relations
        self.register_buffer("pair_relation", torch.from_numpy(pairs % self.n_relations), persistent=False)
        self.register_buffer("kg_head_slot", torch.from_numpy(head_slot), persistent=False)
        self.register_buffer("head_count", torch.from_numpy(np.bincount(head_slot).astype(np.float32)), False)
        self.register_buffer("item_slot", torch.from_numpy(slot_of[: self.n_items].copy()), persistent=False)
        # [pairs, entities]: hop 0's tails; [pairs, heads]: later hops' tails that head triples (the rest are 0).
        rows, cols, counts, entry = _entries(pair_of_triple, tails, self.n_entities)
        self.tails_of_pairs = SparseOperator(sparse_pair(rows, cols, counts, (n_pairs, self.n_entities)))
        self.register_buffer("triple_entry", torch.from_numpy(entry), persistent=False)
        tail_slot = slot_of[tails]
        is_head = tail_slot < self.n_heads
        rows, cols, counts, entry = _entries(pair_of_triple[is_head], tail_slot[is_head], self.n_heads)
        self.head_tails_of_pairs = SparseOperator(sparse_pair(rows, cols, counts, (n_pairs, self.n_heads)))
        head_entry = np.full(len(tails), len(rows), dtype=np.int64)  # len(rows): dropped
        head_entry[is_head] = entry
        self.register_buffer("triple_head_entry", torch.from_numpy(head_entry), persistent=False)
        self.pair_sum = SparseOperator(
            sparse_pair(pair_head, np.arange(n_pairs), np.ones(n_pairs), (self.n_heads, n_pairs))
        )
        # User-item matrix [n_users, n_items] over distinct training pairs, row-normalised (1 / deg(u)).
        users, items = training_edges(dataset)
        degree = np.bincount(users, minlength=self.n_users)
        self.interactions = SparseOperator(sparse_pair(users, items, 1.0 / degree[users], (self.n_users, self.n_items)))

        self.user_embedding = nn.Embedding(self.n_users, self.embedding_size)
        self.entity_embedding = nn.Embedding(self.n_entities, self.embedding_size)
        self.latent_embedding = nn.Embedding(self.n_factors, self.embedding_size)
        self.relation_embedding = nn.Embedding(self.n_relations, self.embedding_size)
        self.disen_weight_att = nn.Parameter(torch.empty(self.n_factors, self.n_relations))
        self.mess_dropout = nn.Dropout(p=self.mess_dropout_rate)
        self.apply(xavier_uniform_initialization)
        nn.init.xavier_uniform_(self.disen_weight_att)

    # -- graph --------------------------------------------------------------------------------------
    def graph_values(self) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
        """Values of the triple matrices (hop 0, later hops), the heads' triple counts and the user-item values:
        the whole graph in evaluation (None: the stored values); while training with node dropout, a uniform
        random subset of the triples and of the user-item entries."""
        if not self.training or self.node_dropout_rate == 0:
            return None, None, self.head_count, None
        keep = 1.0 - self.node_dropout_rate
        n_triples = self.kg_head_slot.shape[0]
        kept = self.head_count.new_zeros(n_triples)
        kept[torch.randperm(n_triples, device=kept.device)[: int(n_triples * keep)]] = 1.0
        tail_values = kept.new_zeros(self.tails_of_pairs.nnz).index_add_(0, self.triple_entry, kept)
        head_values = kept.new_zeros(self.head_tails_of_pairs.nnz + 1).index_add_(0, self.triple_head_entry, kept)
        counts = kept.new_zeros(self.n_heads).index_add_(0, self.kg_head_slot, kept)
        values = self.interactions.values()
        values = values * (torch.rand(values.shape, device=values.device) >= self.node_dropout_rate) / keep
        return tail_values, head_values[:-1], counts, values

    def propagate_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Users [n_users, d] and items [n_items, d] after ``context_hops`` hops, with residual sums (float32)."""
        tail_values, head_values, counts, user_values = self.graph_values()
        inverse_count = 1.0 / counts.clamp(min=1).unsqueeze(1)  # [n_heads, 1]
        pair_relation_e = self.relation_embedding.weight.float().index_select(0, self.pair_relation)
        intents = torch.softmax(self.disen_weight_att, dim=-1) @ self.relation_embedding.weight  # [F, d]
        latent_e = self.latent_embedding.weight
        user_e, entity_0 = self.user_embedding.weight, self.entity_embedding.weight
        item_e = entity_0[: self.n_items]
        user_sum = user_e.float()
        head_sum = item_e.new_zeros(self.n_heads, self.embedding_size, dtype=torch.float32)  # hops 1.. of heads
        head_e: torch.Tensor | None = None  # the previous hop's heads [n_heads, d]; every other entity is 0
        for _ in range(self.context_hops):
            if head_e is None:
                tails = self.tails_of_pairs(entity_0, tail_values)  # [n_pairs, d]
            else:
                tails = self.head_tails_of_pairs(head_e, head_values)
                item_e = F.pad(head_e, (0, 0, 0, 1)).index_select(0, self.item_slot)
            entity_agg = self.pair_sum(tails * pair_relation_e) * inverse_count  # [n_heads, d]
            attention = torch.softmax(user_e @ latent_e.T, dim=1)  # [n_users, F]
            user_agg = self.interactions(item_e, user_values)
            user_agg = (attention @ intents) * user_agg + user_agg
            head_e = F.normalize(self.mess_dropout(entity_agg))
            user_e = F.normalize(self.mess_dropout(user_agg.float()))
            head_sum = head_sum + head_e
            user_sum = user_sum + user_e
        items = entity_0[: self.n_items].float() + F.pad(head_sum, (0, 0, 0, 1)).index_select(0, self.item_slot)
        return user_sum, items

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.propagate_embeddings()

    # -- training -----------------------------------------------------------------------------------
    def intent_independence(self) -> torch.Tensor:
        """The independence loss of the intents' relation weights (float32, autocast off)."""
        with torch.autocast(device_type=self.disen_weight_att.device.type, enabled=False):
            return independence_loss(self.disen_weight_att.float(), self.ind, self.temperature)

    def calculate_loss(self, interaction) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        user_all, item_all = self.propagate_embeddings()
        user_e = user_all[interaction[self.USER_ID]]
        pos_e = item_all[interaction[self.ITEM_ID]]
        neg_e = item_all[interaction[self.NEG_ITEM_ID]]  # [B, d] or [B, N, d]
        pos_scores = (user_e * pos_e).sum(-1)
        neg_scores = (user_e.unsqueeze(1) * neg_e).sum(-1) if neg_e.dim() == 3 else (user_e * neg_e).sum(-1)
        regular = sum(torch.linalg.vector_norm(e) for e in (user_e, pos_e, neg_e)) / user_e.shape[0]
        return (
            bpr_loss(pos_scores, neg_scores),
            self.reg_weight * regular,
            self.sim_decay * self.intent_independence(),
        )

    # -- prediction ---------------------------------------------------------------------------------
    def compute_tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.propagate_embeddings()
