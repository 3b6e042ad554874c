"""KGCN: knowledge graph convolutional networks (Wang et al., WWW 2019), as RecBole 1.2.1, and what KGNNLS shares
with it: the fixed-size neighbour table and the user-specific aggregation over an item's receptive field."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from recforge.config.types import Float, Int, Key, Str
from recforge.models.base import InputType
from recforge.models.init import xavier_normal_initialization
from recforge.models.knowledge.base import KnowledgeRecommender
from recforge.models.losses import embedding_loss
from recforge.registry import register_model

# Elements of one [users, items, d] intermediate in full_sort_predict; the items are scored in chunks under it.
FULL_SORT_BUDGET = 1 << 24


def sample_neighbours(
    heads: torch.Tensor,
    relations: torch.Tensor,
    tails: torch.Tensor,
    n_entities: int,
    size: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """RecBole's ``construct_adj``, vectorised: the knowledge graph taken as undirected (each triple is an edge
    head -> tail and tail -> head with its relation; a self-loop triple counts twice), and for every entity ``size``
    neighbours drawn uniformly, without replacement when it has at least ``size`` edges, else with replacement; an
    entity without edges gets itself ``size`` times, with relation 0 (padding). Returns (neighbour entities,
    their relations), each int64 [n_entities, size].

    An entity's edges are put in a uniformly random order (a random permutation of all edges, then a stable sort
    by entity), so its first ``size`` edges are a uniform draw without replacement."""
    entities = torch.arange(n_entities)
    if heads.numel() == 0:
        return entities[:, None].repeat(1, size), torch.zeros(n_entities, size, dtype=torch.long)
    source, target = torch.cat([heads, tails]), torch.cat([tails, heads])
    relation = torch.cat([relations, relations])
    shuffled = torch.randperm(len(source), generator=generator)
    order = shuffled[torch.argsort(source[shuffled], stable=True)]
    target, relation = target[order], relation[order]
    degree = torch.bincount(source, minlength=n_entities)[:, None]  # [n_entities, 1]
    start = torch.cumsum(degree, 0) - degree
    with_replacement = (torch.rand(n_entities, size, generator=generator) * degree).long()
    with_replacement = torch.minimum(with_replacement, (degree - 1).clamp_min(0))
    position = torch.where(degree >= size, torch.arange(size), with_replacement)
    index = (start + position).clamp_max(len(target) - 1)
    isolated = degree == 0
    return (
        torch.where(isolated, entities[:, None], target[index]),
        torch.where(isolated, torch.zeros_like(index), relation[index]),
    )


@register_model
class KGCN(KnowledgeRecommender):
    """Score(u, i) = <e_u, v_i^u>: the user's embedding against the item's user-specific representation, computed
    over the item's receptive field in the knowledge graph (Wang, Zhao, Xie, Li, Guo, WWW 2019).

    Every entity has ``neighbor_sample_size`` (k) neighbours and their relations, drawn once at construction
    (``sample_neighbours``; buffers ``adj_entity`` / ``adj_relation`` [n_entities, k]). Item i's receptive field
    has k^h entities at hop h (h = 0..n_iter). The user attends to an edge through its relation:
    pi = softmax over the k neighbours of mean(e_u * r) (= <e_u, r> / d), and the neighbourhood of an entity is
    mean over the k neighbours of pi_j v_j (RecBole's mean: the weighted sum divided by k). In iteration t
    (t = 0..n_iter-1) every entity at hops 0..n_iter-1-t is updated to act(W_t agg(v, neighbourhood) + b_t) with
    agg = v + n ('sum'), n ('neighbor') or [v, n] ('concat'), act = ReLU, tanh in the last iteration.

    ``calculate_loss``: binary cross-entropy with logits of the positive pairs (label 1) and the sampled negative
    pairs (label 0) + ``reg_weight`` x (||e_u|| + ||v_pos|| + ||v_neg||) / B (RecBole's EmbLoss of the user
    embeddings and the aggregated item vectors).

    Shapes: a batch of B users scores items [P, M] (P = B: one row of M items per user; P = 1: the same M items for
    every user); hop h holds entities [P, M, k^h], its vectors [P or B, M, k^h, d], attention [B, M, k^h, k].
    ``full_sort_predict`` scores all items in chunks of at most ``FULL_SORT_BUDGET`` / (B k^(n_iter-1) d) items.
    """

    input_type = InputType.PAIRWISE
    hyper_parameters = (
        Key("embedding_size", Int(minimum=1), 64, "Dimension of user, entity and relation embeddings."),
        Key("n_iter", Int(minimum=1), 1, "Number of aggregation iterations (hops of the receptive field)."),
        Key("aggregator", Str(choices=("sum", "neighbor", "concat")), "sum", "How an entity meets its neighbours."),
        Key("reg_weight", Float(minimum=0.0), 1e-7, "Weight of the L2 regularisation."),
        Key("neighbor_sample_size", Int(minimum=1), 4, "Neighbours sampled per entity."),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.embedding_size: int = config["embedding_size"]
        self.n_iter: int = config["n_iter"]
        self.aggregator: str = config["aggregator"]
        self.reg_weight: float = config["reg_weight"]
        self.neighbor_sample_size: int = config["neighbor_sample_size"]
        self.user_embedding = nn.Embedding(self.n_users, self.embedding_size)
        self.entity_embedding = nn.Embedding(self.n_entities, self.embedding_size)
        self.relation_embedding = nn.Embedding(self.n_relations + 1, self.embedding_size)  # RecBole's extra row
        width = 2 * self.embedding_size if self.aggregator == "concat" else self.embedding_size
        self.linear_layers = nn.ModuleList(nn.Linear(width, self.embedding_size) for _ in range(self.n_iter))
        self.build_tables(dataset, torch.Generator().manual_seed(config["seed"]))
        self.apply(xavier_normal_initialization)

    def build_tables(self, dataset, generator: torch.Generator) -> None:
        """The structures drawn once (from ``generator``, seeded with ``config["seed"]``), as buffers: the
        neighbour table ``adj_entity`` and its relations ``adj_relation`` [n_entities, k]."""
        adj_entity, adj_relation = sample_neighbours(
            *self.triples(dataset), self.n_entities, self.neighbor_sample_size, generator
        )
        self.register_buffer("adj_entity", adj_entity)
        self.register_buffer("adj_relation", adj_relation)

    # -- the receptive field and the aggregation ---------------------------------------------------------------
    def receptive_field(self, items: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Items [P, M] -> entities per hop [P, M, k^h] (h = 0..n_iter) and the relations of the edges from hop h to
        hop h + 1 [P, M, k^(h+1)] (h < n_iter), parent-major as RecBole's ``get_neighbors``."""
        entities, relations = [items.unsqueeze(-1)], []
        for _ in range(self.n_iter):
            entities.append(self.adj_entity[entities[-1]].flatten(-2))
            relations.append(self.adj_relation[entities[-2]].flatten(-2))
        return entities, relations

    def attention(self, user_e: torch.Tensor, relations: list[torch.Tensor]) -> list[torch.Tensor]:
        """Per hop h < n_iter, the users' weights of each entity's k edges divided by k [B, M, k^h, k] (RecBole
        takes the mean over the neighbours): softmax over the k edges of <e_u, r> / d (RecBole's mean of e_u * r),
        in float32. The softmax is written out: torch.softmax over a last dimension of 4 is ~3x slower."""
        scores = (user_e @ self.relation_embedding.weight.T).float() / self.embedding_size  # [B, n_relations + 1]
        rows = torch.arange(len(user_e), device=user_e.device)[:, None, None]
        k = self.neighbor_sample_size
        weights = []
        for r in relations:
            logits = scores[rows, r].unflatten(-1, (-1, k))
            exponentials = (logits - logits.amax(-1, keepdim=True)).exp()
            weights.append(exponentials / (k * exponentials.sum(-1, keepdim=True)))
        return weights

    def mix(self, weights: torch.Tensor, neighbours: torch.Tensor, base: torch.Tensor | None = None) -> torch.Tensor:
        """base + sum over the k neighbours of weight x vector: weights [B, M, X, k], neighbours [P, M, X k, d],
        base [P, M, X, d] -> [B, M, X, d] (the base as a (k+1)-th neighbour of weight 1); one batched product per
        (item, entity) when the vectors are the same for every user (P = 1)."""
        neighbours = neighbours.unflatten(-2, (-1, self.neighbor_sample_size))
        if base is not None:
            weights = torch.cat([weights, weights.new_ones(*weights.shape[:-1], 1)], dim=-1)
            neighbours = torch.cat([neighbours, base.unsqueeze(-2).to(neighbours.dtype)], dim=-2)
        if neighbours.shape[0] == 1 and weights.shape[0] != 1:
            return torch.einsum("bmxk,mxkd->bmxd", weights, neighbours[0])
        return (weights.unsqueeze(-1) * neighbours).sum(-2)  # per-user vectors: k is small, no batched product

    def aggregate(self, entities: list[torch.Tensor], weights: list[torch.Tensor]) -> torch.Tensor:
        """RecBole's ``aggregate``: n_iter iterations over the receptive field -> item vectors [B, M, d]."""
        vectors = [self.entity_embedding(e) for e in entities]
        for t in range(self.n_iter):
            vectors = [self.layer(t, vectors[hop], vectors[hop + 1], weights[hop]) for hop in range(self.n_iter - t)]
        return vectors[0].squeeze(-2)

    def layer(self, t: int, own: torch.Tensor, neighbours: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Iteration t on one hop: act(W_t agg(own, n) + b_t) [B, M, X, d], n = sum_j weights_j neighbours_j.

        In iteration 0 the vectors are embeddings, the same for every user ([P, M, ...]): W_t is applied to them
        before the mixing (it commutes with the weighted sum) and the mixing adds W_t own + b_t, so the [B, M, X, d]
        pre-activation comes out of one batched product (full ranking: dense products over [n_items, k^(h+1), d]
        instead of [B, n_items, k^h, d])."""
        linear = self.linear_layers[t]
        if t == 0:
            d = self.embedding_size
            concat = self.aggregator == "concat"
            w_own, w_neighbour = (linear.weight[:, :d], linear.weight[:, d:]) if concat else (linear.weight,) * 2
            if self.aggregator == "neighbor":
                base = linear.bias.expand(own.shape)
            else:
                base = F.linear(own, w_own, linear.bias)
            output = self.mix(weights, F.linear(neighbours, w_neighbour), base)
        else:
            neighbourhood = self.mix(weights, neighbours)
            if self.aggregator == "sum":
                output = linear(own + neighbourhood)
            elif self.aggregator == "neighbor":
                output = linear(neighbourhood)
            else:
                output = linear(torch.cat([own, neighbourhood], dim=-1))
        return torch.tanh(output) if t == self.n_iter - 1 else F.relu(output)

    def encode(
        self, users: torch.Tensor, items: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """Users [B], items [P, M] -> (user embeddings [B, d], item vectors [B, M, d], the receptive field's entities
        per hop, the attention weights per hop)."""
        user_e = self.user_embedding(users)
        entities, relations = self.receptive_field(items)
        weights = self.attention(user_e, relations)
        return user_e, self.aggregate(entities, weights), entities, weights

    def scores(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Users [B], items [P, M] -> <e_u, v_i^u> [B, M]."""
        user_e, item_e = self.encode(users, items)[:2]
        return torch.matmul(item_e, user_e.unsqueeze(-1)).squeeze(-1)

    # -- the model contract --------------------------------------------------------------------------------------
    def calculate_loss(self, interaction) -> torch.Tensor:
        users = interaction[self.USER_ID]
        items = torch.stack([interaction[self.ITEM_ID], interaction[self.NEG_ITEM_ID]], dim=1)  # [B, 2]
        user_e, item_e = self.encode(users, items)[:2]
        scores = (user_e.unsqueeze(1) * item_e).sum(-1).float()
        rec_loss = F.binary_cross_entropy_with_logits(scores, pair_labels(scores))
        return rec_loss + self.reg_weight * embedding_loss(user_e, item_e[:, 0], item_e[:, 1])

    def predict(self, interaction) -> torch.Tensor:
        return self.scores(interaction[self.USER_ID], interaction[self.ITEM_ID][:, None])[:, 0]

    def full_sort_predict(self, interaction) -> torch.Tensor:
        users = interaction[self.USER_ID]
        per_item = len(users) * self.neighbor_sample_size ** (self.n_iter - 1) * self.embedding_size
        chunk = max(1, FULL_SORT_BUDGET // per_item)
        items = torch.arange(self.n_items, device=users.device)[None, :]
        return torch.cat([self.scores(users, part) for part in items.split(chunk, dim=1)], dim=1)


def pair_labels(scores: torch.Tensor) -> torch.Tensor:
    """Labels of [B, 2] (positive, negative) scores: 1 in column 0, 0 in column 1 (float32)."""
    labels = torch.zeros(scores.shape, dtype=torch.float32, device=scores.device)
    labels[:, 0] = 1
    return labels
