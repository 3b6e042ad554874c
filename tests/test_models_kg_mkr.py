"""MKR: the contract, RecBole's RS and KG losses row by row, the towers' full ranking, dropout, the trainer, bf16."""

import numpy as np
import pytest
import torch

from recforge import create_dataset, data_preparation
from recforge.data.interaction import Interaction
from recforge.models.knowledge import mkr
from recforge.registry import get_model_class, get_trainer
from recforge.trainer import Callback, MKRTrainer
from test_models import blocks_config, blocks_path, check_contract  # noqa: F401

SETTINGS = {"learning_rate": 0.01, "epochs": 20, "train_batch_size": 32}
TOWERS = {"low_layers_num": 2, "high_layers_num": 2, "use_inner_product": False}


pytestmark = pytest.mark.usefixtures("one_thread")


def setup(path, **settings):
    config = blocks_config(path, "MKR", **settings)
    train, valid, test = data_preparation(config, create_dataset(config))
    return config, get_model_class("MKR")(config, train.dataset), train, valid


def recbole_cc(unit, v, e):
    """RecBole's CrossCompressUnit: the [B, d, d] matrix v e^T and its transpose through four dim -> 1 layers."""
    d = v.shape[1]
    c = torch.matmul(v.unsqueeze(2), e.unsqueeze(1))
    c_t = c.permute(0, 2, 1).contiguous().view(-1, d)
    c = c.view(-1, d)
    return (unit.fc_vv(c) + unit.fc_ev(c_t)).view(-1, d), (unit.fc_ve(c) + unit.fc_ee(c_t)).view(-1, d)


def mlp(sequential, x):
    for layer in sequential:
        if isinstance(layer, torch.nn.Linear):
            x = torch.sigmoid(layer(x))
    return x


def recbole_forward(model, items, heads):
    v, e = model.item_embeddings_lookup(items), model.entity_embeddings_lookup(heads)
    for unit in model.cc_unit:
        v, e = recbole_cc(unit, v, e)
    return v, e


def recbole_rs_loss(model, batch):
    """RecBole 1.2.1's MKR.calculate_rs_loss (and the scores predict returns)."""
    v, _ = recbole_forward(model, batch["item_id"], batch["item_id"])
    u = mlp(model.user_mlp, model.user_embeddings_lookup(batch["user_id"]))
    if model.use_inner_product:
        scores = torch.sum(u * v, 1)
    else:
        scores = torch.squeeze(mlp(model.rs_pred_mlp, mlp(model.rs_mlp, torch.cat([u, v], 1))))
    base = torch.mean(torch.nn.BCEWithLogitsLoss()(scores, batch["label"]))
    l2 = torch.sum(u**2) / 2 + torch.sum(v**2) / 2
    return scores, base, l2 * model.reg_weight


def recbole_kg_loss(model, batch):
    """RecBole 1.2.1's MKR.calculate_kg_loss: (-score + reg x L2 of the batch) per triple, summed."""
    _, head = recbole_forward(model, batch["head_id"], batch["head_id"])
    tail = mlp(model.tail_mlp, model.entity_embeddings_lookup(batch["tail_id"]))
    relation = model.relation_embeddings_lookup(batch["relation_id"])
    tail_pred = torch.sigmoid(mlp(model.kge_pred_mlp, mlp(model.kge_mlp, torch.cat([head, relation], 1))))
    scores_kge = torch.sigmoid(torch.sum(tail * tail_pred, 1))
    l2 = torch.sum(head**2) / 2 + torch.sum(tail**2) / 2
    return -scores_kge.sum(), (l2 * model.reg_weight).expand(len(scores_kge)).sum()


@pytest.mark.parametrize("towers", [{}, TOWERS])
def test_losses_equal_recboles_formulas(blocks_path, towers):  # noqa: F811
    _, model, train, _ = setup(blocks_path, reg_weight=0.01, **towers)
    batch = next(iter(train.views["rs"]))
    scores, *expected = recbole_rs_loss(model, batch)
    for got, want in zip(model.calculate_rs_loss(batch), expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=0)
    torch.testing.assert_close(model.predict(batch), scores, rtol=1e-5, atol=1e-6)
    triples = next(iter(train.views["kg"]))
    kg = model.calculate_kg_loss(triples)
    for got, want in zip(kg, recbole_kg_loss(model, triples), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=0)
    # The KG score is maximised: its loss lies in [-B, 0) (with the sigmoid tail MLP it starts saturated at -B).
    assert -len(triples["head_id"]) <= kg[0].item() < 0


@pytest.mark.parametrize("high", [1, 3])
def test_full_ranking_of_the_mlp_tower_equals_pairs(blocks_path, high, monkeypatch):  # noqa: F811
    _, model, _, _ = setup(blocks_path, high_layers_num=high, use_inner_product=False)
    monkeypatch.setattr(mkr, "FULL_SORT_CELLS", model.n_items * 2 * model.embedding_size * 3)  # blocks of 3 users
    model.eval()
    users = torch.arange(1, model.n_users)
    with torch.no_grad():
        scores = model.full_sort_predict(Interaction({"user_id": users}))
        pairs = {"user_id": users.repeat_interleave(model.n_items), "item_id": torch.arange(model.n_items).repeat(20)}
        torch.testing.assert_close(scores, model.predict(Interaction(pairs)).view(20, -1), rtol=1e-5, atol=1e-6)
    assert ((scores > 0) & (scores < 1)).all()  # the tower ends in a sigmoid (BCE then applies another)


def test_dropout_only_in_training(blocks_path):  # noqa: F811
    _, model, train, _ = setup(blocks_path, dropout_prob=0.5, **TOWERS)
    batch = next(iter(train.views["rs"]))
    assert not torch.equal(model.predict(batch), model.predict(batch))
    model.eval()
    assert torch.equal(model.predict(batch), model.predict(batch))


def test_the_trainer_adds_the_kg_task_every_kge_interval_epochs(blocks_path, monkeypatch):  # noqa: F811
    config, model, train, valid = setup(blocks_path, epochs=4, kge_interval=2, train_batch_size=32)
    calls, per_epoch = [], []
    original = type(model).calculate_kg_loss
    monkeypatch.setattr(type(model), "calculate_kg_loss", lambda self, b: calls.append(1) or original(self, b))

    class PerEpoch(Callback):
        def on_train_end(self, trainer, epoch, loss):
            per_epoch.append(len(calls))
            calls.clear()

    trainer = get_trainer(type(model))(config, model, run_dir=blocks_path / "run", callbacks=[PerEpoch()])
    assert isinstance(trainer, MKRTrainer)
    trainer.fit(train, valid, verbose=False, saved=False)
    assert per_epoch == [len(train.views["kg"]), 0, len(train.views["kg"]), 0]


def test_bf16_trains(blocks_path):  # noqa: F811
    config, model, train, valid = setup(blocks_path, precision="bf16", epochs=3, train_batch_size=32, **TOWERS)
    trainer = get_trainer(type(model))(config, model, run_dir=blocks_path / "run")
    trainer.fit(train, valid, verbose=False, saved=False)
    assert len(trainer.train_loss_dict) == 3 and all(np.isfinite(v) for v in trainer.train_loss_dict.values())
