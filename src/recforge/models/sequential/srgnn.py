"""SR-GNN: session-based recommendation with graph neural networks (Wu et al., AAAI 2019), RecBole's formulation.

Each history is a directed graph over its distinct items (an edge from every item to the next one). A gated graph
network updates the item states ``step`` times from their normalised incoming and outgoing neighbours; the state
of the last item ``h_t`` and an attention-weighted sum of every position's state
``a = sum_j w^T sigmoid(W_1 h_t + W_2 h_j) h_j`` give ``W_3 [a; h_t]``, which scores every item by a dot product
with its embedding.

RecBole builds the graphs row by row in NumPy (``_get_slice``); ``session_graph`` builds the same tensors for the
whole batch in torch, on the batch's device.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from recforge.config.types import Int, Key
from recforge.models.sequential.base import SequentialRecommender, loss_type_key
from recforge.registry import register_model


def session_graph(
    item_seq: torch.Tensor, dtype: torch.dtype | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """RecBole's session graphs of right-padded histories [B, L], for the whole batch at once (adjacencies in
    ``dtype``, by default torch's default dtype).

    Returns:
        alias [B, L]: the node of each position (nodes are a row's distinct values in increasing order, so the
            padding 0, where a row has any, is node 0);
        items [B, L]: the item of each node, 0 after the row's last node;
        adjacency_in [B, L, L]: ``[b, i, j] = A[j, i] / max(1, in-degree(i))``;
        adjacency_out [B, L, L]: ``[b, i, j] = A[i, j] / max(1, out-degree(i))``;
        where ``A[u, v] = 1`` when item ``v`` directly follows item ``u`` somewhere before the row's first padding.
        RecBole's ``A`` is ``cat([adjacency_in, adjacency_out], dim=2)``.
    """
    batch, length = item_seq.shape
    sorted_items, order = item_seq.sort(dim=1)
    first = torch.ones_like(item_seq, dtype=torch.bool)
    first[:, 1:] = sorted_items[:, 1:] != sorted_items[:, :-1]
    node = first.cumsum(dim=1) - 1  # the node of each sorted position
    alias = torch.empty_like(item_seq).scatter_(1, order, node)
    # Each node's item, written from its first sorted position; the other positions write to a spare column.
    slot = torch.where(first, node, length)
    items = item_seq.new_zeros(batch, length + 1).scatter_(1, slot, sorted_items)[:, :length]

    linked = (item_seq[:, 1:] != 0).cumprod(dim=1)  # RecBole stops at a row's first padding
    cells = alias[:, :-1] * length + alias[:, 1:]
    dtype = dtype or torch.get_default_dtype()
    adjacency = item_seq.new_zeros(batch, length * length, dtype=dtype)
    adjacency = adjacency.scatter_add_(1, cells, linked.to(dtype)).clamp_(max=1.0).view(batch, length, length)
    in_degree = adjacency.sum(dim=1).clamp_(min=1.0)  # [B, L]: column sums
    out_degree = adjacency.sum(dim=2).clamp_(min=1.0)  # [B, L]: row sums
    adjacency_in = adjacency.transpose(1, 2) / in_degree.unsqueeze(2)
    adjacency_out = adjacency / out_degree.unsqueeze(2)
    return alias, items, adjacency_in, adjacency_out


def gather_positions(hidden: torch.Tensor, alias: torch.Tensor) -> torch.Tensor:
    """The state of each position's node: [B, N, d], [B, L] -> [B, L, d]."""
    return hidden.gather(1, alias.unsqueeze(2).expand(-1, -1, hidden.size(2)))


def uniform_initialization(module: nn.Module, size: int) -> None:
    """RecBole's ``_reset_parameters`` of SR-GNN: every parameter (embedding padding row included) drawn from
    U(-1/sqrt(size), 1/sqrt(size)), in ``module.parameters()`` order."""
    bound = 1.0 / math.sqrt(size)
    for weight in module.parameters():
        weight.data.uniform_(-bound, bound)


class GNN(nn.Module):
    """RecBole's gated graph network: ``step`` GRU-style updates of the node states from the messages of their
    incoming and outgoing neighbours. ``edge_biases``: SR-GNN adds the biases ``b_iah`` / ``b_ioh`` to the
    incoming / outgoing messages (GC-SAN does not)."""

    def __init__(self, embedding_size: int, step: int = 1, edge_biases: bool = True) -> None:
        super().__init__()
        self.step = step
        self.embedding_size = embedding_size
        self.input_size = embedding_size * 2
        self.gate_size = embedding_size * 3
        self.w_ih = nn.Parameter(torch.empty(self.gate_size, self.input_size))
        self.w_hh = nn.Parameter(torch.empty(self.gate_size, self.embedding_size))
        self.b_ih = nn.Parameter(torch.empty(self.gate_size))
        self.b_hh = nn.Parameter(torch.empty(self.gate_size))
        self.edge_biases = edge_biases
        if edge_biases:
            self.b_iah = nn.Parameter(torch.empty(self.embedding_size))
            self.b_ioh = nn.Parameter(torch.empty(self.embedding_size))
        self.linear_edge_in = nn.Linear(embedding_size, embedding_size, bias=True)
        self.linear_edge_out = nn.Linear(embedding_size, embedding_size, bias=True)

    def GNNCell(self, adjacency_in: torch.Tensor, adjacency_out: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """One update: adjacencies [B, N, N], node states [B, N, d] -> [B, N, d]."""
        input_in = torch.matmul(adjacency_in, self.linear_edge_in(hidden))
        input_out = torch.matmul(adjacency_out, self.linear_edge_out(hidden))
        if self.edge_biases:
            input_in = input_in + self.b_iah
            input_out = input_out + self.b_ioh
        gi = F.linear(torch.cat([input_in, input_out], dim=2), self.w_ih, self.b_ih)
        gh = F.linear(hidden, self.w_hh, self.b_hh)
        i_r, i_i, i_n = gi.chunk(3, dim=2)
        h_r, h_i, h_n = gh.chunk(3, dim=2)
        reset_gate = torch.sigmoid(i_r + h_r)
        input_gate = torch.sigmoid(i_i + h_i)
        new_gate = torch.tanh(i_n + reset_gate * h_n)
        return (1 - input_gate) * hidden + input_gate * new_gate

    def forward(self, adjacency_in: torch.Tensor, adjacency_out: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        for _ in range(self.step):
            hidden = self.GNNCell(adjacency_in, adjacency_out, hidden)
        return hidden


@register_model
class SRGNN(SequentialRecommender):
    """A gated graph network over each history's session graph, read out by soft attention over the positions
    and the last item's state; scores are dot products with the item embeddings."""

    hyper_parameters = (
        Key("embedding_size", Int(minimum=1), 64, "Dimension of item embeddings and node states."),
        Key("step", Int(minimum=1), 1, "Graph network updates (layers)."),
        loss_type_key(),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.embedding_size: int = config["embedding_size"]
        self.step: int = config["step"]
        size = self.embedding_size
        self.item_embedding = nn.Embedding(self.n_items, size, padding_idx=0)
        self.gnn = GNN(size, self.step)
        self.linear_one = nn.Linear(size, size, bias=True)
        self.linear_two = nn.Linear(size, size, bias=True)
        self.linear_three = nn.Linear(size, 1, bias=False)
        self.linear_transform = nn.Linear(size * 2, size, bias=True)
        uniform_initialization(self, size)

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """[B, L], [B] -> the history's representation [B, embedding_size]."""
        alias, items, adjacency_in, adjacency_out = session_graph(item_seq, self.item_embedding.weight.dtype)
        hidden = self.gnn(adjacency_in, adjacency_out, self.item_embedding(items))
        seq_hidden = gather_positions(hidden, alias)  # [B, L, d]
        ht = self.gather_indexes(seq_hidden, item_seq_len - 1)  # [B, d]: the last item's state
        q1 = self.linear_one(ht).unsqueeze(1)
        q2 = self.linear_two(seq_hidden)
        alpha = self.linear_three(torch.sigmoid(q1 + q2))  # [B, L, 1], not normalised (as RecBole)
        mask = item_seq.gt(0).unsqueeze(2).to(alpha.dtype)
        a = torch.sum(alpha * seq_hidden * mask, dim=1)
        return self.linear_transform(torch.cat([a, ht], dim=1))
