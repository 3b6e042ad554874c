"""HGN: scores and losses equal RecBole 1.2.1's equations written out per row (every history position, padding
included, as RecBole reads them)."""

import pytest
import torch

import recforge.models.sequential.hgn  # noqa: F401
from recforge.errors import ConfigError
from recforge.registry import get_model_class
from recforge.utils import init_seed
from sequential_data import cycle_config, cycle_loaders, first_batch, write_cycle

BPR = {"loss_type": "BPR", "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1}}


def build(tmp_path, **settings):
    config = cycle_config(write_cycle(tmp_path), "HGN", embedding_size=5, **settings)
    train, _, test = cycle_loaders(config)
    init_seed(config["seed"])
    model = get_model_class("HGN")(config, train.dataset)
    with torch.no_grad():  # large values, so that a wrong weight shows
        for p in (model.item_embedding.weight, model.user_embedding.weight, model.b, model.w1.bias, model.w2.bias):
            p.normal_(0.0, 1.0)
    return model.eval(), first_batch(train), first_batch(test)


def recbole_representation(model, history, user, pooling):
    """HGN.forward for one history (all MAX_ITEM_LIST_LENGTH positions) of one user."""
    e = model.item_embedding.weight[history]  # [L, d]
    u = model.user_embedding.weight[user]
    gated = e * torch.sigmoid(e @ model.w1.weight.T + model.w1.bias + model.w2.weight @ u + model.w2.bias + model.b)
    gate = torch.sigmoid(gated @ model.w3.weight[0] + model.w4.weight @ u)  # [L]
    if pooling == "average":
        pooled = (gate.unsqueeze(1) * gated).sum(0) / gate.sum()
    else:
        best = int(gate.argmax())
        pooled = gate[best] * gated[best]
    return u + pooled + e.sum(0)


def recbole_output(model, batch, pooling="average"):
    """The representations [B, d] of a batch, row by row."""
    pairs = zip(batch["item_id_list"], batch["user_id"], strict=True)
    return torch.stack([recbole_representation(model, history, user, pooling) for history, user in pairs])


def recbole_scores(model, batch, pooling="average"):
    return recbole_output(model, batch, pooling) @ model.item_embedding_for_prediction.weight.T


def test_defaults_and_initialisation(tmp_path):
    config = cycle_config(write_cycle(tmp_path), "HGN", embedding_size=40)
    init_seed(config["seed"])
    model = get_model_class("HGN")(config, cycle_loaders(config)[0].dataset)
    assert (model.pool_type, model.loss_type, model.reg_weight) == ("average", "CE", [0.0, 0.0])
    assert model.w4.weight.shape == (8, 40) and model.w3.weight.shape == (1, 40)
    for table in (model.item_embedding, model.user_embedding, model.item_embedding_for_prediction):
        assert abs(table.weight.std().item() - 1 / 40) < 0.005
    assert model.item_embedding.weight[0].abs().sum() > 0  # RecBole's init overwrites the padding row too
    assert model.w1.bias.abs().sum() == 0 and model.b.abs().sum() == 0
    bound = (6 / 80) ** 0.5  # Xavier-uniform of a 40 x 40 matrix
    assert 0.9 * bound < model.w1.weight.abs().max() <= bound


@pytest.mark.parametrize("pooling", ["average", "max"])
def test_scores_equal_recboles_equations(tmp_path, pooling):
    model, train_batch, test_batch = build(tmp_path, pooling_type=pooling)
    for batch in (train_batch, test_batch):
        with torch.no_grad():
            scores = model.full_sort_predict(batch)
            want = recbole_scores(model, batch, pooling)
            torch.testing.assert_close(scores, want, rtol=1e-5, atol=1e-5)
            picked = model.predict(batch)
        torch.testing.assert_close(picked, want.gather(1, batch["item_id"].view(-1, 1)).squeeze(1))
    assert scores.std() > 0.1


def reg(model, batch):
    reg_1, reg_2 = model.reg_weight
    norm = torch.linalg.vector_norm
    matrices = sum(norm(w.weight) for w in (model.w1, model.w2, model.w3, model.w4))
    user = model.user_embedding.weight[batch["user_id"]]
    target = model.item_embedding_for_prediction.weight[batch["item_id"]]
    history = model.item_embedding.weight[batch["item_id_list"]]
    return reg_1 * matrices + reg_2 * (norm(user) + norm(target) + norm(history))


def test_ce_loss_is_recboles(tmp_path):
    model, batch, _ = build(tmp_path, reg_weight=[0.3, 0.2])
    logits = recbole_scores(model, batch)
    ce = -torch.log_softmax(logits, dim=1).gather(1, batch["item_id"].view(-1, 1)).mean()
    torch.testing.assert_close(model.calculate_loss(batch), ce + reg(model, batch), rtol=1e-5, atol=1e-5)


def test_bpr_loss_scores_the_negative_with_the_history_table(tmp_path):
    """RecBole 1.2.1 scores the target with item_embedding_for_prediction but the negative with item_embedding."""
    model, batch, _ = build(tmp_path, reg_weight=[0.3, 0.2], **BPR)
    output = recbole_output(model, batch)
    pos = (output * model.item_embedding_for_prediction.weight[batch["item_id"]]).sum(1)
    neg = (output * model.item_embedding.weight[batch["neg_item_id"]]).sum(1)
    bpr = -torch.log(1e-10 + torch.sigmoid(pos - neg)).mean()
    torch.testing.assert_close(model.calculate_loss(batch), bpr + reg(model, batch), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("settings", "key"), [({"pooling_type": "sum"}, "pooling_type"), ({"reg_weight": [0.1]}, "reg_weight")]
)
def test_invalid_settings_name_their_key(tmp_path, settings, key):
    with pytest.raises(ConfigError, match=key):
        config = cycle_config(write_cycle(tmp_path), "HGN", **settings)
        get_model_class("HGN")(config, cycle_loaders(config)[0].dataset)
