"""CFKG: the contract, RecBole's loss re-computed row by row for both loss functions, bf16, the buy relation and
the merged (RSKG) batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from recforge import create_dataset, data_preparation, init_seed
from recforge.data.interaction import Interaction
from recforge.errors import ConfigError
from recforge.models.knowledge.cfkg import CFKG
from recforge.registry import get_trainer
from test_models import blocks_config, blocks_path, check_contract  # noqa: F401

SETTINGS = {"learning_rate": 0.02, "epochs": 8, "train_batch_size": 16}


def blocks_model(path, **overrides):
    config = blocks_config(path, "CFKG", **{**SETTINGS, **overrides})
    train, valid, _ = data_preparation(config, create_dataset(config))
    init_seed(config["seed"])
    return config, CFKG(config, train.dataset), train, valid


def reference_loss(model, batch, loss_function, margin):
    """RecBole's CFKG loss: the interaction rows (user, buy, item) then the triple rows (head, relation, tail), one
    anchor h + r per row, the mean over all rows of the row's loss."""
    rows = []
    buy = model.relation_embedding.weight[model.n_relations]  # the extra last row
    for u, i, j in zip(batch["user_id"], batch["item_id"], batch["neg_item_id"], strict=True):
        rows.append(
            (model.user_embedding.weight[u] + buy, model.entity_embedding.weight[i], model.entity_embedding.weight[j])
        )
    for h, r, t, nt in zip(batch["head_id"], batch["relation_id"], batch["tail_id"], batch["neg_tail_id"], strict=True):
        anchor = model.entity_embedding.weight[h] + model.relation_embedding.weight[r]
        rows.append((anchor, model.entity_embedding.weight[t], model.entity_embedding.weight[nt]))
    losses = []
    for a, p, n in rows:
        if loss_function == "transe":  # nn.TripletMarginLoss: pairwise_distance adds eps = 1e-6 to the difference
            d_pos = torch.sqrt(((a - p + 1e-6) ** 2).sum())
            d_neg = torch.sqrt(((a - n + 1e-6) ** 2).sum())
            losses.append(torch.clamp(d_pos - d_neg + margin, min=0))
        else:
            losses.append(F.softplus(-(a * p).sum()) + F.softplus((a * n).sum()))
    return torch.stack(losses).mean()


def perturb(model, seed=0):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)


def test_contract_transe(blocks_path, one_thread):  # noqa: F811
    check_contract(blocks_path, "CFKG", loss_function="transe", **SETTINGS)


@pytest.mark.parametrize("loss_function", ["inner_product", "transe"])
def test_loss_equals_recboles_formula(blocks_path, loss_function):  # noqa: F811
    _, model, _, _ = blocks_model(blocks_path, loss_function=loss_function, margin=1.7)
    perturb(model)
    batch = Interaction(
        {
            "user_id": torch.tensor([1, 4, 9, 20]),
            "item_id": torch.tensor([2, 5, 11, 19]),
            "neg_item_id": torch.tensor([7, 1, 3, 12]),
            "head_id": torch.tensor([1, 3, 22, 8, 17]),
            "relation_id": torch.tensor([1, 2, 3, 1, 3]),
            "tail_id": torch.tensor([21, 4, 24, 23, 25]),
            "neg_tail_id": torch.tensor([9, 25, 2, 4, 21]),
        }
    )
    with torch.no_grad():
        expected = reference_loss(model, batch, loss_function, 1.7)
    torch.testing.assert_close(model.calculate_loss(batch).detach(), expected, rtol=1e-5, atol=0)


@pytest.mark.parametrize("loss_function", ["inner_product", "transe"])
def test_scores_are_the_buy_triples(blocks_path, loss_function):  # noqa: F811
    _, model, _, _ = blocks_model(blocks_path, loss_function=loss_function)
    perturb(model, seed=1)
    assert model.relation_embedding.num_embeddings == model.n_relations + 1  # the data set's relations + buy
    users = torch.arange(model.n_users)
    scores = model.full_sort_predict(Interaction({"user_id": users}))
    with torch.no_grad():
        anchors = model.user_embedding.weight + model.relation_embedding.weight[-1]
        items = model.entity_embedding.weight[: model.n_items]
        for u in (1, 7, 20):
            for i in (0, 3, 19):
                a, t = anchors[u].double(), items[i].double()
                expected = -torch.sqrt(((a - t) ** 2).sum()) if loss_function == "transe" else (a * t).sum()
                torch.testing.assert_close(scores[u, i].double(), expected, rtol=1e-6, atol=0)
    pairs = Interaction(
        {"user_id": users.repeat_interleave(model.n_items), "item_id": torch.arange(model.n_items).repeat(len(users))}
    )
    torch.testing.assert_close(scores, model.predict(pairs).view(len(users), -1), rtol=1e-6, atol=1e-6)


def test_trains_on_merged_batches(blocks_path):  # noqa: F811
    config, model, train, valid = blocks_model(blocks_path, epochs=2)
    assert CFKG.uses_kg_batches and config.get("train_rec_step") is None
    trainer = get_trainer(CFKG)(config, model)
    assert [(o.loss, o.data) for o in trainer.build_objectives()] == [("calculate_loss", "rskg")]
    seen = []
    original = model.calculate_loss
    model.calculate_loss = lambda batch: seen.append(set(batch.keys())) or original(batch)
    trainer.fit(train, valid, verbose=False, saved=False)
    assert seen and all({"user_id", "neg_item_id", "head_id", "relation_id", "neg_tail_id"} <= keys for keys in seen)


def test_loss_function_choices(blocks_path):  # noqa: F811
    with pytest.raises(ConfigError, match="loss_function"):
        blocks_model(blocks_path, loss_function="bpr")


@pytest.mark.parametrize("loss_function", ["inner_product", "transe"])
def test_bf16_trains(blocks_path, loss_function, one_thread):  # noqa: F811
    config, model, train, valid = blocks_model(blocks_path, precision="bf16", epochs=3, loss_function=loss_function)
    trainer = get_trainer(CFKG)(config, model)
    trainer.fit(train, valid, verbose=False, saved=False)
    assert len(trainer.train_loss_dict) == 3 and all(np.isfinite(v) for v in trainer.train_loss_dict.values())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        scores = model.full_sort_predict(Interaction({"user_id": torch.arange(1, 21)}))
    assert torch.isfinite(scores).all()
