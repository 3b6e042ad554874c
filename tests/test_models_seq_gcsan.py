"""GCSAN against RecBole 1.2.1's formulation: scores and losses equal RecBole's equations (the per-row session
graph of ``_get_slice``, the bias-free gated graph network, RecBole's explicit transformer, the mix by ``weight``,
the embedding regulariser) recomputed from the model's weights; RecBole's names and initialisation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import recforge.models.sequential.gcsan  # noqa: F401  (registers GCSAN)
from recforge.errors import ConfigError
from recforge.models.sequential.gcsan import GCSAN
from sequential_data import cycle_config, cycle_loaders, first_batch, write_cycle
from test_models_seq_srgnn import handmade_batch, linear, recbole_graph_states, recbole_loss


def recbole_transformer(model: GCSAN, hidden: torch.Tensor, item_seq: torch.Tensor) -> torch.Tensor:
    """RecBole 1.2.1's TransformerEncoder (no dropout) with a causal mask of -10000 on later and padding keys."""
    batch, length, size = hidden.shape
    allowed = torch.tril(torch.ones(length, length, dtype=torch.bool)) & (item_seq > 0).view(batch, 1, 1, length)
    mask = torch.where(allowed, 0.0, -10000.0)
    eps = model.config["layer_norm_eps"]
    for layer in model.self_attention.layer:
        attention, feed_forward = layer.multi_head_attention, layer.feed_forward
        heads = attention.num_attention_heads
        head = size // heads

        def split(x, heads=heads, head=head):
            return x.view(batch, length, heads, head).permute(0, 2, 1, 3)

        q, k, v = (split(linear(hidden, part)) for part in (attention.query, attention.key, attention.value))
        probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(head) + mask, dim=-1)
        context = (probs @ v).permute(0, 2, 1, 3).reshape(batch, length, size)
        norm = attention.LayerNorm
        hidden = F.layer_norm(linear(context, attention.dense) + hidden, (size,), norm.weight, norm.bias, eps)
        inner = linear(hidden, feed_forward.dense_1)
        inner = inner * 0.5 * (1.0 + torch.erf(inner / math.sqrt(2.0)))
        norm = feed_forward.LayerNorm
        hidden = F.layer_norm(linear(inner, feed_forward.dense_2) + hidden, (size,), norm.weight, norm.bias, eps)
    return hidden


def recbole_gcsan(model: GCSAN, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
    """RecBole 1.2.1's GCSAN.forward from the model's weights."""
    seq_hidden, _ = recbole_graph_states(model, item_seq, edge_biases=False)
    rows = torch.arange(len(item_seq))
    ht = seq_hidden[rows, item_seq_len - 1]
    at = recbole_transformer(model, seq_hidden, item_seq)[rows, item_seq_len - 1]
    return model.weight * at + (1 - model.weight) * ht


@pytest.fixture(scope="module")
def cycle(tmp_path_factory):
    root = write_cycle(tmp_path_factory.mktemp("cycle"))
    train, _, _ = cycle_loaders(cycle_config(root, "GCSAN"))
    return root, train


def build(cycle, seed: int = 0, **overrides) -> GCSAN:
    root, train = cycle
    torch.manual_seed(seed)
    model = GCSAN(cycle_config(root, "GCSAN", **overrides), train.dataset)
    return model.eval()


@pytest.mark.parametrize(("step", "weight"), [(1, 0.6), (2, 0.25)])
def test_scores_equal_recbole_equations(cycle, step, weight):
    model = build(cycle, step=step, weight=weight, initializer_range=0.2)  # larger weights: the layers matter
    batch = handmade_batch(model)
    with torch.no_grad():
        expected = recbole_gcsan(model, batch[model.ITEM_SEQ], batch[model.ITEM_SEQ_LEN])
        scores = model.full_sort_predict(batch)
        assert torch.allclose(scores, expected @ model.item_embedding.weight.T, atol=1e-5)
        assert torch.allclose(model.predict(batch), scores[torch.arange(len(scores)), batch[model.ITEM_ID]], atol=1e-5)
        assert scores.std() > 0.01


@pytest.mark.parametrize("loss_type", ["CE", "BPR"])
def test_loss_equals_recbole_equations(cycle, loss_type):
    model = build(cycle, seed=3, loss_type=loss_type, reg_weight=0.5, initializer_range=0.2)  # dropout off: eval
    train_batch = first_batch(cycle[1])  # a CE loader's: negatives drawn here
    train_batch[model.NEG_ITEM_ID] = torch.randint(1, model.n_items, train_batch[model.ITEM_ID].shape)
    table = model.item_embedding.weight
    for batch in (handmade_batch(model), train_batch):
        seq_output = recbole_gcsan(model, batch[model.ITEM_SEQ], batch[model.ITEM_SEQ_LEN])
        # RecBole's EmbLoss of the whole table: its 2-norm over its number of rows.
        expected = recbole_loss(seq_output, table, batch, model) + 0.5 * table.norm() / model.n_items
        assert torch.allclose(model.calculate_loss(batch), expected, atol=1e-5)


def test_parameters_are_recboles(cycle):
    model = build(cycle, seed=4, hidden_size=16, n_heads=2, initializer_range=0.02)
    names = list(model.state_dict())
    assert names[:9] == [
        "item_embedding.weight",
        "gnn.w_ih",
        "gnn.w_hh",
        "gnn.b_ih",
        "gnn.b_hh",
        "gnn.linear_edge_in.weight",
        "gnn.linear_edge_in.bias",
        "gnn.linear_edge_out.weight",
        "gnn.linear_edge_out.bias",
    ]
    assert names[9] == "self_attention.layer.0.multi_head_attention.query.weight"
    # The GNN's own parameters keep its uniform reset; its linear layers and the rest are redrawn normal(0, 0.02).
    bound = 1 / math.sqrt(16)
    for weight in (model.gnn.w_ih, model.gnn.w_hh, model.gnn.b_ih, model.gnn.b_hh):
        assert weight.abs().max() <= bound and weight.abs().max() > 0.5 * bound
    for weight in (model.item_embedding.weight, model.gnn.linear_edge_in.weight):
        assert 0.01 < weight.std() < 0.03
    assert model.gnn.linear_edge_out.bias.abs().sum() == 0


def test_weight_outside_the_unit_interval_is_refused(cycle):
    with pytest.raises(ConfigError, match="weight"):
        cycle_config(cycle[0], "GCSAN", weight=1.5)
