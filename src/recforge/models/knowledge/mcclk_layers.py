"""The building blocks of MCCLK (``recforge.models.knowledge.mcclk``): its row-normalised interaction graphs, the
relation-aware aggregation over the knowledge graph, the k-NN semantic graph and the cross-view contrastive loss.

Everything is vectorised: graphs are CSR tensors or [n, k] neighbour tables; per-edge work runs over edge tensors
with ``index_add`` / ``scatter_reduce``; sparse products go through ``recforge.models.sparse`` (float32, autocast off).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from recforge.models.sparse import SparsePair, sparse_pair

KNN_BLOCK_ELEMENTS = 1 << 24  # similarities held at once while building the k-NN graph (64 MiB of float32)


# -- sparse matrices ---------------------------------------------------------------------------------------------
def mean_graph(users: torch.Tensor, items: torch.Tensor, n_users: int, n_items: int) -> SparsePair:
    """RecBole's "si" normalisation ``D^-1 A`` of the bipartite graph over [users; items] with the distinct
    training pairs as edges: each node's row averages its neighbours (isolated nodes have empty rows)."""
    rows = torch.cat([users, items + n_users])
    cols = torch.cat([items + n_users, users])
    degree = torch.bincount(rows, minlength=n_users + n_items).float()
    return sparse_pair(rows, cols, 1.0 / degree[rows], (n_users + n_items, n_users + n_items))


def user_mean_matrix(users: torch.Tensor, items: torch.Tensor, n_users: int, n_items: int) -> SparsePair:
    """The user rows of ``mean_graph`` as a [n_users, n_items] matrix: a user's row averages its items."""
    degree = torch.bincount(users, minlength=n_users).float()
    return sparse_pair(users, items, 1.0 / degree[users], (n_users, n_items))


def sparse_dropout(pair: SparsePair, p: float) -> SparsePair:
    """RecBole's ``SparseDropout``: every stored value is kept with probability 1 - p and scaled by 1 / (1 - p)
    (a dropped entry becomes a stored zero); one draw from torch's global generator."""
    values = pair.matrix.values()
    keep = 1.0 - p
    kept = (torch.rand(values.shape, device=values.device) + keep).floor()
    return pair.with_values(values * kept / keep)


# -- knowledge-graph aggregation -------------------------------------------------------------------------------
class Edges(NamedTuple):
    """Knowledge-graph edges as id tensors [E]: messages flow from ``tail`` to ``head`` under ``relation``."""

    head: torch.Tensor
    relation: torch.Tensor
    tail: torch.Tensor

    def sample(self, dropout_rate: float) -> Edges:
        """Edge dropout: ``int(E x (1 - dropout_rate))`` edges drawn without replacement (torch's generator)."""
        keep = torch.randperm(len(self.head), device=self.head.device)[: int(len(self.head) * (1 - dropout_rate))]
        return Edges(self.head[keep], self.relation[keep], self.tail[keep])


def segment_softmax(scores: torch.Tensor, groups: torch.Tensor, n_groups: int) -> torch.Tensor:
    """softmax of ``scores`` [E] within each group of equal ``groups`` ids (torch_scatter's ``scatter_softmax``)."""
    maxima = scores.new_full((n_groups,), float("-inf"))
    maxima = maxima.scatter_reduce(0, groups, scores.detach(), "amax", include_self=True)
    exponentials = (scores - maxima[groups]).exp()
    sums = scores.new_zeros(n_groups).index_add(0, groups, exponentials)
    return exponentials / sums[groups]


def entity_aggregate(entities: torch.Tensor, relations: torch.Tensor, edges: Edges, attention: bool) -> torch.Tensor:
    """One hop of RecBole's ``Aggregator`` for entities [n_entities, d]: each head averages the messages
    e_tail * r of its edges (0 without edges); with ``attention`` each message is first weighted by the softmax,
    over the head's edges, of (||e_head * r|| x ||e_tail * r||)^2 (the authors' attention)."""
    n = entities.shape[0]
    edge_relations = relations[edges.relation]  # [E, d]
    messages = entities[edges.tail] * edge_relations
    if attention:
        head_norm = (entities[edges.head] * edge_relations).norm(dim=1)
        weights = segment_softmax((head_norm * messages.norm(dim=1)) ** 2, edges.head, n)
        messages = messages * weights.unsqueeze(1)
    counts = torch.bincount(edges.head, minlength=n).clamp_(min=1).to(messages.dtype)
    return messages.new_zeros(n, messages.shape[1]).index_add(0, edges.head, messages) / counts.unsqueeze(1)


def user_aggregate(
    users: torch.Tensor, items: torch.Tensor, relations: torch.Tensor, user_items: SparsePair
) -> torch.Tensor:
    """The user part of RecBole's ``Aggregator``: m_u = mean of the user's item embeddings, then
    m_u + (softmax(e_u R^T) R) * m_u, [n_users, d]."""
    mean = user_items.propagate(items)
    relation_weights = torch.softmax(users @ relations.T, dim=-1)  # [n_users, n_relations]
    return mean + (relation_weights @ relations) * mean


def layer_mean(layers: list[torch.Tensor]) -> torch.Tensor:
    """The mean of the layers' embeddings."""
    return torch.stack([layer.float() for layer in layers]).mean(dim=0)


# -- the k-NN semantic graph -----------------------------------------------------------------------------------
class Neighbours(NamedTuple):
    """A sparse graph over n nodes as a table: row i's entries are ``weights[i, m]`` at columns ``index[i, m]``."""

    index: torch.Tensor  # [n, m] int64
    weights: torch.Tensor  # [n, m] float32

    def propagate(self, x: torch.Tensor) -> torch.Tensor:
        """The graph times ``x`` [n, d]: row i is sum_m weights[i, m] x[index[i, m]] (float32)."""
        return torch.einsum("nm,nmd->nd", self.weights, x.float()[self.index])


@torch.no_grad()
def knn_graph(context: torch.Tensor, k: int) -> Neighbours:
    """RecBole's ``build_adj``: the k most cosine-similar rows of each row of ``context`` [n, d] (itself
    included), weighted by the similarity S and normalised as D^-1/2 S D^-1/2 with D the row sums of S. A
    constant (no gradient): RecBole detaches it. Rows are scored in blocks, so memory stays O(block x n) for an
    O(n^2 d) cost."""
    with torch.autocast(device_type=context.device.type, enabled=False):
        unit = F.normalize(context.float(), dim=1)
        n, k = unit.shape[0], min(k, unit.shape[0])
        block = max(1, KNN_BLOCK_ELEMENTS // n)
        tops = [torch.topk(chunk @ unit.T, k, dim=1) for chunk in unit.split(block)]
        values = torch.cat([top.values for top in tops])
        index = torch.cat([top.indices for top in tops])
        scale = values.sum(dim=1).pow(-0.5)
        return Neighbours(index, scale.unsqueeze(1) * values * scale[index])


def blend(updated: Neighbours, original: Neighbours, lambda_coeff: float) -> Neighbours:
    """(1 - lambda) x updated + lambda x original, one table (a column present in both rows adds up)."""
    return Neighbours(
        torch.cat([updated.index, original.index], dim=1),
        torch.cat([(1 - lambda_coeff) * updated.weights, lambda_coeff * original.weights], dim=1),
    )


# -- the contrastive loss --------------------------------------------------------------------------------------
def cross_view_loss(
    view_1: torch.Tensor, view_2: torch.Tensor, counts: torch.Tensor, temperature: float, both_ways: bool
) -> torch.Tensor:
    """RecBole's MCCLK contrastive loss over the batch rows: with e(x, y) = exp(cos(x, y) / t), row i's term is
    -log(e(a_i, b_i) / (sum_j e(a_i, a_j) + sum_j e(a_i, b_j) - e(a_i, a_i))) (``local_level_loss``); with
    ``both_ways`` it is averaged with the same term from b's side (``global_level_loss_*``); the mean over rows.

    The batch's repeated rows are given once: ``view_1`` and ``view_2`` [m, d] hold the distinct rows, ``counts``
    [m] how often each occurs in the batch; sums over the batch's j and the mean over its i weight by the counts
    (the same value as RecBole's [B, B] computation, in O(m^2) instead of O(B^2)). Float32, autocast off."""
    with torch.autocast(device_type=view_1.device.type, enabled=False):
        a, b = F.normalize(view_1.float(), dim=1), F.normalize(view_2.float(), dim=1)
        between = torch.exp(a @ b.T / temperature)  # [m, m]
        positive = (a * b).sum(dim=1) / temperature

        def side(x: torch.Tensor, between_sums: torch.Tensor) -> torch.Tensor:
            reflexive = torch.exp(x @ x.T / temperature)
            return torch.log(reflexive @ counts + between_sums - reflexive.diagonal()) - positive

        terms = side(a, between @ counts)
        if both_ways:
            terms = (terms + side(b, between.T @ counts)) / 2
        return (terms * counts).sum() / counts.sum()
