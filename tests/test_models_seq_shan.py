"""SHAN: scores and losses equal RecBole 1.2.1's equations written out per row, on right-aligned histories."""

import math

import pytest
import torch

import recforge.models.sequential.shan  # noqa: F401
from recforge.errors import ConfigError
from recforge.registry import get_model_class
from recforge.utils import init_seed
from sequential_data import cycle_config, cycle_loaders, first_batch, write_cycle

BPR = {"loss_type": "BPR", "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1}}


def build(tmp_path, **settings):
    config = cycle_config(write_cycle(tmp_path), "SHAN", embedding_size=6, **settings)
    train, _, test = cycle_loaders(config)
    init_seed(config["seed"])
    model = get_model_class("SHAN")(config, train.dataset)
    with torch.no_grad():  # sharp attentions and large scores, so that a wrong weight shows
        for p in (model.item_embedding.weight, model.user_embedding.weight, model.long_b, model.long_short_b):
            p.normal_(0.0, 1.0)
    return model.eval(), first_batch(train), first_batch(test)


def attention(values, user, w, b):
    """RecBole's pooling over the rows of ``values`` [T, d] (the unmasked ones): softmax(relu(W v + b) . u)."""
    weights = torch.softmax(torch.relu(values @ w.weight.T + w.bias + b) @ user, dim=0)
    return (weights.unsqueeze(1) * values).sum(0)


def recbole_representation(model, history, user):
    """SHAN.forward for one left-aligned history (its items, oldest first) of one user: the long-term vector over
    every item, then the long-short attention over [long-term, last short_item_length items]."""
    items = model.item_embedding.weight[history]
    u = model.user_embedding.weight[user]
    long_term = attention(items, u, model.long_w, model.long_b)
    short = items[-model.short_item_length :]
    return attention(torch.cat([long_term.unsqueeze(0), short]), u, model.long_short_w, model.long_short_b)


def recbole_scores(model, batch):
    rows = []
    for items, length, user in zip(batch["item_id_list"], batch["item_length"], batch["user_id"], strict=True):
        rows.append(recbole_representation(model, items[:length], user) @ model.item_embedding.weight.T)
    return torch.stack(rows)


def test_defaults_read_inverse_histories(tmp_path):
    model, batch, _ = build(tmp_path)
    assert model.config["transform"] == "inverse_itemseq" and model.reg_weight == [0.01, 0.0001]
    assert model.short_item_length == 2 and model.loss_type == "CE"
    length = int(batch["item_length"][0])
    assert batch["Inverse_item_id_list"][0, -length:].tolist() == batch["item_id_list"][0, :length].tolist()


def test_initialisation_is_recboles(tmp_path):
    config = cycle_config(write_cycle(tmp_path), "SHAN", embedding_size=48)
    init_seed(config["seed"])
    model = get_model_class("SHAN")(config, cycle_loaders(config)[0].dataset)
    bound = math.sqrt(3 / 48)
    assert abs(model.item_embedding.weight.std().item() - 0.01) < 0.002
    for w in (model.long_w.weight, model.long_short_w.weight, model.long_b, model.long_short_b):
        assert w.abs().max() <= bound and w.abs().max() > 0.9 * bound
    assert model.long_w.bias.abs().max() <= 1 / math.sqrt(48)  # PyTorch's default, RecBole does not touch it


def test_scores_equal_recboles_equations(tmp_path):
    model, train_batch, test_batch = build(tmp_path)
    for batch in (train_batch, test_batch):
        with torch.no_grad():
            scores = model.full_sort_predict(batch)
            want = recbole_scores(model, batch)
            torch.testing.assert_close(scores, want, rtol=1e-5, atol=1e-5)
            picked = model.predict(batch)
        torch.testing.assert_close(picked, want.gather(1, batch["item_id"].view(-1, 1)).squeeze(1))
    assert scores.std() > 0.5  # the check sees real differences


def reg(model, batch):
    reg_1, reg_2 = model.reg_weight
    users = model.user_embedding.weight[batch["user_id"]]
    targets = model.item_embedding.weight[batch["item_id"]]
    weights = model.long_w.weight.pow(2).sum().sqrt() + model.long_short_w.weight.pow(2).sum().sqrt()
    return reg_1 * weights + reg_2 * (users.pow(2).sum().sqrt() + targets.pow(2).sum().sqrt())


def test_ce_loss_is_recboles(tmp_path):
    model, batch, _ = build(tmp_path, reg_weight=[0.3, 0.2])
    logits = recbole_scores(model, batch)
    ce = -torch.log_softmax(logits, dim=1).gather(1, batch["item_id"].view(-1, 1)).mean()
    torch.testing.assert_close(model.calculate_loss(batch), ce + reg(model, batch), rtol=1e-5, atol=1e-5)


def test_bpr_loss_is_recboles(tmp_path):
    model, batch, _ = build(tmp_path, reg_weight=[0.3, 0.2], **BPR)
    scores = recbole_scores(model, batch)
    pos = scores.gather(1, batch["item_id"].view(-1, 1))
    neg = scores.gather(1, batch["neg_item_id"].view(-1, 1))
    bpr = -torch.log(1e-10 + torch.sigmoid(pos - neg)).mean()
    torch.testing.assert_close(model.calculate_loss(batch), bpr + reg(model, batch), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"short_item_length": 9}, "short_item_length"),
        ({"transform": None}, "transform"),
        ({"reg_weight": [0.1]}, "reg_weight"),
    ],
)
def test_invalid_settings_name_their_key(tmp_path, settings, key):
    config = cycle_config(write_cycle(tmp_path), "SHAN", **settings)
    with pytest.raises(ConfigError, match=key):
        get_model_class("SHAN")(config, cycle_loaders(config)[0].dataset)
