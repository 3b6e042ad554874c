"""LightSANs: its scores and losses equal RecBole 1.2.1's low-rank attention equations written out here, and its
initialisation follows RecBole's (one layer deep-copied, so every layer starts from the same thetas)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import recforge.models.sequential.lightsans  # noqa: F401  (registers LightSANs)
from recforge.registry import get_model_class
from recforge.utils import init_seed
from sequential_data import cycle_config, cycle_loaders, first_batch, write_cycle

SMALL = {"hidden_size": 8, "inner_size": 16, "k_interests": 3, "hidden_dropout_prob": 0.0, "attn_dropout_prob": 0.0}


@pytest.fixture(scope="module")
def cycle_root(tmp_path_factory):
    return write_cycle(tmp_path_factory.mktemp("cycle"))


def build(root, **overrides):
    config = cycle_config(root, "LightSANs", **{**SMALL, **overrides})
    train, _, test = cycle_loaders(config)
    init_seed(0)
    model = get_model_class("LightSANs")(config, train.dataset).eval()
    return model, train, test


def recbole_light_attention(att, x: torch.Tensor, pos_emb: torch.Tensor) -> torch.Tensor:
    """RecBole 1.2.1's LightMultiHeadAttention.forward, written out."""
    heads, size = att.num_attention_heads, att.attention_head_size

    def split(t):
        return t.view(*t.shape[:-1], heads, size).permute(0, 2, 1, 3)

    def pool(aggregation, t):  # ItemToInterestAggregation
        weights = torch.softmax(torch.matmul(t, aggregation.theta), dim=-2)
        return torch.einsum("nij, nik -> nkj", t, weights)

    mixed_value = att.value(x)
    query = split(att.query(x))
    key, value = split(pool(att.attpooling_key, att.key(x))), split(pool(att.attpooling_value, mixed_value))
    probs = torch.softmax(torch.matmul(query, key.transpose(-1, -2)) / math.sqrt(size), dim=-2)
    item_context = torch.matmul(probs, value)
    positions = att.pos_ln(pos_emb).unsqueeze(0)
    pos_query = split(att.pos_q_linear(positions)) * float(size * 2) ** -0.5
    pos_key = split(att.pos_k_linear(positions))
    pos_probs = torch.softmax(torch.matmul(pos_query, pos_key.transpose(-1, -2)) / math.sqrt(size), dim=-2)
    context = item_context + torch.matmul(pos_probs, split(mixed_value))
    context = context.permute(0, 2, 1, 3).reshape(x.shape)
    return att.LayerNorm(att.dense(context) + x)


def recbole_scores(model, items: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """RecBole 1.2.1's LightSANs.full_sort_predict, written out (no dropout)."""
    hidden = model.LayerNorm(model.item_embedding(items))
    pos_emb = model.position_embedding(torch.arange(items.shape[1]))
    for layer in model.trm_encoder.layer:
        hidden = recbole_light_attention(layer.multi_head_attention, hidden, pos_emb)
        ff = layer.feed_forward
        inner = ff.dense_1(hidden)
        hidden = ff.LayerNorm(ff.dense_2(inner * 0.5 * (1.0 + torch.erf(inner / math.sqrt(2.0)))) + hidden)
    last = hidden[torch.arange(len(items)), lengths - 1]
    return last @ model.item_embedding.weight.T


def randomise(model) -> None:
    """Weights away from their initial zeros and ones, so every term of the equations counts."""
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)


def test_scores_and_losses_are_recboles_equations(cycle_root, one_thread):
    model, train, test = build(cycle_root)
    randomise(model)
    for batch in (first_batch(train), first_batch(test)):
        items, lengths = batch["item_id_list"], batch["item_length"]
        expected = recbole_scores(model, items, lengths)
        with torch.no_grad():
            assert torch.allclose(model.full_sort_predict(batch), expected, atol=1e-5)
            picked = expected[torch.arange(len(items)), batch["item_id"]]
            assert torch.allclose(model.predict(batch), picked, atol=1e-5)
            ce = F.cross_entropy(expected, batch["item_id"])
            assert model.calculate_loss(batch).item() == pytest.approx(ce.item(), rel=1e-5)


def test_bpr_loss_is_recboles(cycle_root, one_thread):
    model, train, _ = build(cycle_root, loss_type="BPR", train_neg_sample_args={"distribution": "uniform"})
    randomise(model)
    batch = first_batch(train)
    scores = recbole_scores(model, batch["item_id_list"], batch["item_length"])
    rows = torch.arange(len(scores))
    difference = scores[rows, batch["item_id"]] - scores[rows, batch["neg_item_id"]]
    expected = -torch.log(1e-10 + torch.sigmoid(difference)).mean()
    with torch.no_grad():
        assert model.calculate_loss(batch).item() == pytest.approx(expected.item(), rel=1e-5)


def test_padding_is_not_masked(cycle_root, one_thread):
    """RecBole pools every position into the interests, padding included: a history's score depends on its width."""
    model, _, test = build(cycle_root)
    randomise(model)
    batch = first_batch(test)
    short = batch["item_length"].argmin()
    items = batch["item_id_list"][short : short + 1].clone()
    assert (items == 0).any()
    with torch.no_grad():
        out = model(items, batch["item_length"][short : short + 1])
        items[items == 0] = 1  # a different item where the padding was: the output moves
        assert not torch.allclose(model(items, batch["item_length"][short : short + 1]), out)


def test_initialisation_is_recboles(cycle_root, one_thread):
    model, _, _ = build(cycle_root, n_layers=3)
    first, *others = model.trm_encoder.layer
    for layer in others:  # deep copies of one built layer: the same thetas, which _init_weights leaves alone
        for name in ("attpooling_key", "attpooling_value"):
            theta = getattr(layer.multi_head_attention, name).theta
            assert torch.equal(theta, getattr(first.multi_head_attention, name).theta)
    theta = first.multi_head_attention.attpooling_key.theta
    assert theta.shape == (8, 3) and 0.5 < theta.std().item() < 1.6  # randn, not normal(0, 0.02)
    query = first.multi_head_attention.query
    assert query.weight.std().item() < 0.05 and torch.equal(query.bias, torch.zeros(8))
    assert not torch.equal(query.weight, others[0].multi_head_attention.query.weight)  # re-drawn per layer
    assert torch.equal(model.LayerNorm.weight, torch.ones(8))
    assert sorted(model.state_dict())[:3] == ["LayerNorm.bias", "LayerNorm.weight", "item_embedding.weight"]
    assert "trm_encoder.layer.0.multi_head_attention.attpooling_value.theta" in model.state_dict()
