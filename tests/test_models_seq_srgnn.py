"""SRGNN against RecBole 1.2.1's formulation: the vectorised session graph equals RecBole's per-row ``_get_slice``,
the scores and losses equal RecBole's equations recomputed from the model's weights, and the parameters are drawn
in RecBole's order under RecBole's names."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import recforge.models.sequential.srgnn  # noqa: F401  (registers SRGNN)
from recforge.data.interaction import Interaction
from recforge.models.sequential.srgnn import SRGNN, session_graph
from sequential_data import cycle_config, cycle_loaders, first_batch, write_cycle

# Right-padded histories over the cycle's 12 items with repeated items, repeated edges, self-loops, a row without
# padding and a row of one item.
HISTORIES = [
    [3, 5, 3, 5, 7, 0, 0, 0],
    [1, 2, 3, 4, 5, 6, 7, 8],
    [4, 0, 0, 0, 0, 0, 0, 0],
    [2, 2, 2, 9, 0, 0, 0, 0],
    [12, 1, 12, 6, 1, 12, 6, 6],
    [9, 8, 7, 9, 8, 7, 1, 0],
]
TARGETS = [7, 9, 5, 9, 6, 2]
NEGATIVES = [1, 4, 11, 3, 12, 8]


def recbole_get_slice(item_seq: torch.Tensor):
    """RecBole 1.2.1's SRGNN._get_slice, row by row in NumPy: (alias_inputs, A [B, L, 2L], items, mask)."""
    mask = item_seq.gt(0)
    items, graphs, alias_inputs = [], [], []
    max_n_node = item_seq.size(1)
    for u_input in item_seq.numpy():
        node = np.unique(u_input)
        items.append(node.tolist() + (max_n_node - len(node)) * [0])
        u_a = np.zeros((max_n_node, max_n_node))
        for i in np.arange(len(u_input) - 1):
            if u_input[i + 1] == 0:
                break
            u = np.where(node == u_input[i])[0][0]
            v = np.where(node == u_input[i + 1])[0][0]
            u_a[u][v] = 1
        u_sum_in = np.sum(u_a, 0)
        u_sum_in[np.where(u_sum_in == 0)] = 1
        u_a_in = np.divide(u_a, u_sum_in)
        u_sum_out = np.sum(u_a, 1)
        u_sum_out[np.where(u_sum_out == 0)] = 1
        u_a_out = np.divide(u_a.transpose(), u_sum_out)
        graphs.append(np.concatenate([u_a_in, u_a_out]).transpose())
        alias_inputs.append([np.where(node == i)[0][0] for i in u_input])
    return torch.LongTensor(alias_inputs), torch.FloatTensor(np.array(graphs)), torch.LongTensor(items), mask


def handmade_batch(model) -> Interaction:
    histories = torch.tensor(HISTORIES)
    return Interaction(
        {
            model.ITEM_SEQ: histories,
            model.ITEM_SEQ_LEN: (histories > 0).sum(dim=1),
            model.ITEM_ID: torch.tensor(TARGETS),
            model.NEG_ITEM_ID: torch.tensor(NEGATIVES),
        }
    )


def linear(x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
    return x @ layer.weight.T + (0 if layer.bias is None else layer.bias)


def recbole_gnn_cell(gnn, graph: torch.Tensor, hidden: torch.Tensor, edge_biases: bool) -> torch.Tensor:
    """RecBole's GNNCell on its A = [in | out] [B, N, 2N]."""
    n = graph.size(1)
    input_in = graph[:, :, :n] @ linear(hidden, gnn.linear_edge_in)
    input_out = graph[:, :, n : 2 * n] @ linear(hidden, gnn.linear_edge_out)
    if edge_biases:
        input_in, input_out = input_in + gnn.b_iah, input_out + gnn.b_ioh
    gi = torch.cat([input_in, input_out], 2) @ gnn.w_ih.T + gnn.b_ih
    gh = hidden @ gnn.w_hh.T + gnn.b_hh
    (i_r, i_i, i_n), (h_r, h_i, h_n) = gi.chunk(3, 2), gh.chunk(3, 2)
    reset, update = torch.sigmoid(i_r + h_r), torch.sigmoid(i_i + h_i)
    new = torch.tanh(i_n + reset * h_n)
    return (1 - update) * hidden + update * new


def recbole_graph_states(model, item_seq: torch.Tensor, edge_biases: bool):
    """(seq_hidden [B, L, d], mask) of RecBole's forward: the GNN over _get_slice's graphs, gathered by alias."""
    alias, graph, items, mask = recbole_get_slice(item_seq)
    hidden = model.item_embedding.weight[items]
    for _ in range(model.gnn.step):
        hidden = recbole_gnn_cell(model.gnn, graph, hidden, edge_biases)
    return hidden[torch.arange(len(item_seq)).unsqueeze(1), alias], mask


def recbole_srgnn(model: SRGNN, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
    """RecBole 1.2.1's SRGNN.forward from the model's weights."""
    seq_hidden, mask = recbole_graph_states(model, item_seq, edge_biases=True)
    ht = seq_hidden[torch.arange(len(item_seq)), item_seq_len - 1]
    q1 = linear(ht, model.linear_one).unsqueeze(1)
    alpha = linear(torch.sigmoid(q1 + linear(seq_hidden, model.linear_two)), model.linear_three)
    a = (alpha * seq_hidden * mask.unsqueeze(2).float()).sum(1)
    return linear(torch.cat([a, ht], dim=1), model.linear_transform)


def recbole_loss(seq_output: torch.Tensor, table: torch.Tensor, batch, model) -> torch.Tensor:
    pos = batch[model.ITEM_ID]
    if model.loss_type == "BPR":
        pos_score = (seq_output * table[pos]).sum(-1)
        neg_score = (seq_output * table[batch[model.NEG_ITEM_ID]]).sum(-1)
        return -torch.log(1e-10 + torch.sigmoid(pos_score - neg_score)).mean()
    logits = seq_output @ table.T
    return (torch.logsumexp(logits, dim=1) - logits[torch.arange(len(pos)), pos]).mean()


@pytest.fixture(scope="module")
def cycle(tmp_path_factory):
    root = write_cycle(tmp_path_factory.mktemp("cycle"))
    train, _, _ = cycle_loaders(cycle_config(root, "SRGNN"))
    return root, train


def build(cycle, seed: int = 0, **overrides) -> SRGNN:
    root, train = cycle
    torch.manual_seed(seed)
    model = SRGNN(cycle_config(root, "SRGNN", **overrides), train.dataset)
    return model.eval()


def test_session_graph_equals_recbole_per_row_construction():
    item_seq = torch.tensor(HISTORIES)
    alias, items, adjacency_in, adjacency_out = session_graph(item_seq)
    expected_alias, expected_graph, expected_items, _ = recbole_get_slice(item_seq)
    assert torch.equal(alias, expected_alias)
    assert torch.equal(items, expected_items)
    assert torch.equal(torch.cat([adjacency_in, adjacency_out], dim=2), expected_graph)
    # Hand-checked: row 0 is 3 5 3 5 7 with nodes (0, 3, 5, 7); edges 3->5, 5->3, 5->7.
    assert alias[0].tolist() == [1, 2, 1, 2, 3, 0, 0, 0] and items[0].tolist() == [0, 3, 5, 7, 0, 0, 0, 0]
    assert adjacency_in[0, 3, 2] == 1.0 and adjacency_in[0, 2, 1] == 1.0  # 7 and 5 each have one predecessor
    assert adjacency_out[0, 2, 1] == 0.5 and adjacency_out[0, 2, 3] == 0.5 and adjacency_out[0, 1, 2] == 1.0


def test_session_graph_of_random_histories_equals_recbole():
    generator = torch.Generator().manual_seed(1)
    items = torch.randint(1, 6, (64, 10), generator=generator)
    lengths = torch.randint(1, 11, (64,), generator=generator)
    item_seq = torch.where(torch.arange(10) < lengths.unsqueeze(1), items, 0)
    alias, nodes, adjacency_in, adjacency_out = session_graph(item_seq)
    expected_alias, expected_graph, expected_items, _ = recbole_get_slice(item_seq)
    assert torch.equal(alias, expected_alias) and torch.equal(nodes, expected_items)
    assert torch.equal(torch.cat([adjacency_in, adjacency_out], dim=2), expected_graph)


@pytest.mark.parametrize("step", [1, 2])
def test_scores_equal_recbole_equations(cycle, step):
    model = build(cycle, step=step)
    batch = handmade_batch(model)
    with torch.no_grad():
        expected = recbole_srgnn(model, batch[model.ITEM_SEQ], batch[model.ITEM_SEQ_LEN])
        scores = model.full_sort_predict(batch)
        assert torch.allclose(scores, expected @ model.item_embedding.weight.T, atol=1e-5)
        assert torch.allclose(model.predict(batch), scores[torch.arange(len(TARGETS)), TARGETS], atol=1e-5)
        assert scores.std() > 0.01  # the weights are not degenerate


@pytest.mark.parametrize("loss_type", ["CE", "BPR"])
def test_loss_equals_recbole_equations(cycle, loss_type):
    model = build(cycle, seed=2, loss_type=loss_type)
    model.train()
    train_batch = first_batch(cycle[1])  # a CE loader's: negatives drawn here
    train_batch[model.NEG_ITEM_ID] = torch.randint(1, model.n_items, train_batch[model.ITEM_ID].shape)
    for batch in (handmade_batch(model), train_batch):
        seq_output = recbole_srgnn(model, batch[model.ITEM_SEQ], batch[model.ITEM_SEQ_LEN])
        expected = recbole_loss(seq_output, model.item_embedding.weight, batch, model)
        assert torch.allclose(model.calculate_loss(batch), expected, atol=1e-5)


RECBOLE_PARAMETERS = [
    "item_embedding.weight",
    "gnn.w_ih",
    "gnn.w_hh",
    "gnn.b_ih",
    "gnn.b_hh",
    "gnn.b_iah",
    "gnn.b_ioh",
    "gnn.linear_edge_in.weight",
    "gnn.linear_edge_in.bias",
    "gnn.linear_edge_out.weight",
    "gnn.linear_edge_out.bias",
    "linear_one.weight",
    "linear_one.bias",
    "linear_two.weight",
    "linear_two.bias",
    "linear_three.weight",
    "linear_transform.weight",
    "linear_transform.bias",
]


def test_parameters_are_recboles_drawn_in_recboles_order(cycle):
    model = build(cycle, seed=5, embedding_size=16)
    assert list(model.state_dict()) == RECBOLE_PARAMETERS
    # RecBole: the layers' default initialisations in construction order, then U(-1/sqrt(d), 1/sqrt(d)) for every
    # parameter (the padding row included) in registration order.
    torch.manual_seed(5)
    d = 16
    nn.Embedding(model.n_items, d, padding_idx=0)
    for fan_in, fan_out, bias in [(d, d, True)] * 4 + [(d, 1, False), (2 * d, d, True)]:
        nn.Linear(fan_in, fan_out, bias=bias)
    bound = 1 / math.sqrt(d)
    for name, parameter in model.named_parameters():
        expected = torch.empty(parameter.shape).uniform_(-bound, bound)
        assert torch.equal(parameter.detach(), expected), name
    assert model.item_embedding.weight[0].abs().sum() > 0  # RecBole redraws the padding row too
