"""CORE: its session representations, scores and loss equal RecBole 1.2.1's equations written out here (both
``dnn_type``s), its initialisation is RecBole's uniform reset, and its settings are checked."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import recforge.models.sequential.core  # noqa: F401  (registers CORE)
from recforge.errors import ConfigError
from recforge.registry import get_model_class
from recforge.utils import init_seed
from sequential_data import cycle_config, cycle_loaders, first_batch, write_cycle

SMALL = {"embedding_size": 8, "inner_size": 16, "hidden_dropout_prob": 0.0, "attn_dropout_prob": 0.0}


@pytest.fixture(scope="module")
def cycle_root(tmp_path_factory):
    return write_cycle(tmp_path_factory.mktemp("cycle"))


def build(root, **overrides):
    config = cycle_config(root, "CORE", **{**SMALL, **overrides})
    train, _, test = cycle_loaders(config)
    init_seed(0)
    return get_model_class("CORE")(config, train.dataset).eval(), train, test


def recbole_transformer(encoder, x: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """RecBole 1.2.1's TransformerEncoder with its causal mask, written out."""
    length = items.shape[1]
    allowed = (items > 0)[:, None, None, :] & torch.ones(length, length, dtype=torch.bool).tril()
    mask = (1.0 - allowed.float()) * -10000.0
    for layer in encoder.layer:
        att, ff = layer.multi_head_attention, layer.feed_forward
        heads, size = att.num_attention_heads, att.attention_head_size

        def split(t, heads=heads, size=size):
            return t.view(*t.shape[:-1], heads, size).permute(0, 2, 1, 3)

        scores = split(att.query(x)) @ split(att.key(x)).transpose(-1, -2) / math.sqrt(size) + mask
        context = (torch.softmax(scores, dim=-1) @ split(att.value(x))).permute(0, 2, 1, 3).reshape(x.shape)
        x = att.LayerNorm(att.dense(context) + x)
        inner = ff.dense_1(x)
        x = ff.LayerNorm(ff.dense_2(inner * 0.5 * (1.0 + torch.erf(inner / math.sqrt(2.0)))) + x)
    return x


def recbole_session(model, items: torch.Tensor) -> torch.Tensor:
    """RecBole 1.2.1's CORE.forward (no dropout): the normalised alpha-weighted sum of the session's embeddings."""
    x = model.item_embedding(items)
    present = items > 0
    if model.dnn_type == "ave":
        alpha = (present.float() / present.sum(dim=1, keepdim=True)).unsqueeze(-1)
    else:
        net = model.net
        hidden = net.LayerNorm(x + net.position_embedding(torch.arange(items.shape[1])).unsqueeze(0))
        logits = net.fn(recbole_transformer(net.trm_encoder, hidden, items)).double()
        alpha = torch.softmax(torch.where(present.unsqueeze(-1), logits, -9e15), dim=1).float()
    session = (alpha * x).sum(dim=1)
    return session / session.norm(dim=-1, keepdim=True)


@pytest.mark.parametrize("dnn_type", ["trm", "ave"])
def test_scores_and_loss_are_recboles_equations(cycle_root, dnn_type, one_thread):
    model, train, test = build(cycle_root, dnn_type=dnn_type)
    items_table = model.item_embedding.weight
    cosines = items_table / items_table.norm(dim=-1, keepdim=True)
    for batch in (first_batch(train), first_batch(test)):
        expected = recbole_session(model, batch["item_id_list"]) @ cosines.T / 0.07
        with torch.no_grad():
            assert torch.allclose(model.full_sort_predict(batch), expected, atol=1e-4)
            # RecBole's predict forgets to normalise the item: here it scores as full_sort_predict does
            picked = expected[torch.arange(len(expected)), batch["item_id"]]
            assert torch.allclose(model.predict(batch), picked, atol=1e-4)
            ce = F.cross_entropy(expected, batch["item_id"])  # item_dropout is off in eval mode
            assert model.calculate_loss(batch).item() == pytest.approx(ce.item(), rel=1e-5)


def test_ave_is_the_mean_of_the_sessions_items(cycle_root, one_thread):
    """A hand example: the session (1, 2) of embeddings (3, 4) and (0, 5) is their mean (1.5, 4.5) normalised."""
    model, _, _ = build(cycle_root, dnn_type="ave", embedding_size=2, temperature=0.5)
    with torch.no_grad():
        model.item_embedding.weight.zero_()
        model.item_embedding.weight[1:4] = torch.tensor([[3.0, 4.0], [0.0, 5.0], [1.0, 0.0]])
        session = model(torch.tensor([[1, 2, 0, 0, 0, 0, 0, 0]]))
        assert session[0].tolist() == pytest.approx([1.5 / math.sqrt(22.5), 4.5 / math.sqrt(22.5)])
        scores = model.full_sort_predict({"item_id_list": torch.tensor([[1, 2, 0, 0, 0, 0, 0, 0]])})
        assert scores[0, 3].item() == pytest.approx(1.5 / math.sqrt(22.5) / 0.5)


def test_training_drops_session_and_candidate_embeddings(cycle_root, one_thread):
    model, train, _ = build(cycle_root, dnn_type="ave", sess_dropout=0.5, item_dropout=0.5)
    batch = first_batch(train)
    model.train()
    torch.manual_seed(1)
    loss = model.calculate_loss(batch)
    torch.manual_seed(1)
    x = F.dropout(model.item_embedding(batch["item_id_list"]), 0.5)
    present = (batch["item_id_list"] > 0).float()
    session = F.normalize((x * (present / present.sum(1, keepdim=True)).unsqueeze(-1)).sum(1), dim=-1)
    candidates = F.normalize(F.dropout(model.item_embedding.weight, 0.5), dim=-1)
    expected = F.cross_entropy(session @ candidates.T / 0.07, batch["item_id"])
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_initialisation_is_recboles_uniform_reset(cycle_root, one_thread):
    model, _, _ = build(cycle_root)
    bound = 1.0 / math.sqrt(8)
    for name, parameter in model.named_parameters():  # LayerNorms and biases included
        assert parameter.abs().max() <= bound and (parameter.numel() == 1 or parameter.std() > bound / 4), name
    assert not torch.equal(model.net.LayerNorm.weight, torch.ones(8))
    assert "net.fn.weight" in model.state_dict() and "net.trm_encoder.layer.1.feed_forward.dense_2.bias" in (
        model.state_dict()
    )


def test_settings_are_checked(cycle_root):
    with pytest.raises(ConfigError, match="loss_type"):
        cycle_config(cycle_root, "CORE", loss_type="BPR")
    with pytest.raises(ConfigError, match="dnn_type"):
        cycle_config(cycle_root, "CORE", dnn_type="gru")
    with pytest.raises(ConfigError, match="embedding_size"):
        build(cycle_root, embedding_size=9, n_heads=2)
