"""KTUP: the contract, RecBole's losses re-computed row by row, bf16, the noise-free scoring and the schedule."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from recforge import create_dataset, data_preparation, init_seed
from recforge.data.interaction import Interaction
from recforge.models.knowledge import ktup
from recforge.models.knowledge.ktup import KTUP
from recforge.registry import get_trainer
from recforge.trainer.objectives import Cycle
from test_models import blocks_config, blocks_path, check_contract  # noqa: F401

SETTINGS = {"learning_rate": 0.02, "epochs": 15, "train_batch_size": 16}


def blocks_model(path, **overrides):
    config = blocks_config(path, "KTUP", **{**SETTINGS, **overrides})
    train, valid, _ = data_preparation(config, create_dataset(config))
    init_seed(config["seed"])
    return config, KTUP(config, train.dataset), train, valid


def perturb(model: KTUP, seed: int = 0) -> None:
    """Random tables off the unit sphere, so that the norm constraints and projections are not trivial."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.4)


# -- RecBole's formulas, one row at a time ----------------------------------------------------------------------


def reference_pair(model, u, v, noise, use_st_gumbel, l1):
    """RecBole's KTUP score of one pair (user vector u, item + entity vector v) with uniform draws ``noise``."""
    table = model.pref_embedding.weight + model.relation_embedding.weight
    norm_table = model.pref_norm_embedding.weight + model.relation_norm_embedding.weight
    probs = torch.stack([(u + v) @ table[k] for k in range(len(table))]) / 2
    if use_st_gumbel:  # the forward value of the straight-through estimator; no noise: the logits' argmax
        y = probs if noise is None else torch.softmax(probs - torch.log(-torch.log(noise + 1e-20) + 1e-20), dim=0)
        probs = F.one_hot(y.argmax(), len(y)).float()
    r = sum(probs[k] * table[k] for k in range(len(table))) / 2
    n = sum(probs[k] * norm_table[k] for k in range(len(table))) / 2
    pu = u - (u * n).sum() * n
    pv = v - (v * n).sum() * n
    diff = pu + r - pv
    return -diff.abs().sum() if l1 else -(diff**2).sum()


def reference_rec_loss(model, users, pos, neg, noise_pos, noise_neg, use_st_gumbel, l1, align_weight):
    terms, aligns = [], []
    for row in range(len(users)):
        u = model.user_embedding.weight[users[row]]
        item_v = [model.item_embedding.weight[i] + model.entity_embedding.weight[i] for i in (pos[row], neg[row])]
        s_pos = reference_pair(model, u, item_v[0], noise_pos[row], use_st_gumbel, l1)
        s_neg = reference_pair(model, u, item_v[1], noise_neg[row], use_st_gumbel, l1)
        terms.append(-torch.log(1e-10 + torch.sigmoid(s_pos - s_neg)))
    for item in torch.cat([pos, neg]):
        d = model.item_embedding.weight[item] - model.entity_embedding.weight[item]
        aligns.append(d.abs().sum() if l1 else (d**2).sum())
    p, q = model.pref_embedding.weight, model.pref_norm_embedding.weight
    orth = sum((q[k] @ p[k]) ** 2 / (p[k] @ p[k]) for k in range(len(p)))
    return torch.stack(terms).mean(), orth, align_weight * torch.stack(aligns).mean()


def reference_kg_loss(model, h, r, t, nt, l1, margin, kg_weight, align_weight):
    ranking, orth, reg, aligns = [], [], 0.0, []
    for row in range(len(h)):
        he, te, ne = (model.entity_embedding.weight[x[row]] for x in (h, t, nt))
        re, norm = model.relation_embedding.weight[r[row]], model.relation_norm_embedding.weight[r[row]]

        def proj(x, norm=norm):
            return x - (x @ norm) * norm

        def score(tail, he=he, re=re, proj=proj):
            diff = proj(he) + re - proj(tail)
            return -diff.abs().sum() if l1 else -(diff**2).sum()

        ranking.append(torch.clamp(-(score(te) - score(ne)) + margin, min=0))
        orth.append((norm @ re) ** 2 / (re @ re))
        for e in (he, te, ne, re):
            reg = reg + torch.clamp(e @ e - 1, min=0)
    for entity in torch.cat([h, t, nt]):
        if entity < model.n_items:
            d = model.item_embedding.weight[entity] - model.entity_embedding.weight[entity]
            aligns.append(d.abs().sum() if l1 else (d**2).sum())
    loss = kg_weight * (torch.stack(ranking).mean() + torch.stack(orth).sum() + reg)
    return loss, align_weight * torch.stack(aligns).mean()


# -- tests -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("use_st_gumbel", "l1"), [(True, False), (False, False), (True, True), (False, True)])
def test_losses_equal_recboles_formulas(blocks_path, use_st_gumbel, l1):  # noqa: F811
    _, model, _, _ = blocks_model(
        blocks_path, use_st_gumbel=use_st_gumbel, L1_flag=l1, margin=2.5, kg_weight=0.7, align_weight=0.3
    )
    perturb(model)
    users, pos, neg = torch.tensor([1, 2, 5, 13, 20]), torch.tensor([1, 3, 7, 12, 19]), torch.tensor([4, 2, 9, 1, 18])
    batch = Interaction({"user_id": users, "item_id": pos, "neg_item_id": neg})
    torch.manual_seed(3)
    got = model.calculate_loss(batch)
    torch.manual_seed(3)  # RecBole draws the positives' uniform noise [B, R], then the negatives'
    noise_pos, noise_neg = torch.rand(5, model.n_relations), torch.rand(5, model.n_relations)
    with torch.no_grad():
        expected = reference_rec_loss(model, users, pos, neg, noise_pos, noise_neg, use_st_gumbel, l1, 0.3)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g.detach(), e, rtol=1e-5, atol=0)

    h, r = torch.tensor([1, 21, 3, 22, 25]), torch.tensor([1, 2, 3, 1, 2])
    t, nt = torch.tensor([21, 2, 24, 23, 5]), torch.tensor([8, 25, 22, 4, 21])
    kg = Interaction({"head_id": h, "relation_id": r, "tail_id": t, "neg_tail_id": nt})
    got = model.calculate_kg_loss(kg)
    with torch.no_grad():
        expected = reference_kg_loss(model, h, r, t, nt, l1, 2.5, 0.7, 0.3)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g.detach(), e, rtol=1e-5, atol=0)


@pytest.mark.parametrize(("use_st_gumbel", "l1"), [(True, False), (False, False), (True, True), (False, True)])
def test_full_ranking_equals_pairwise_scores(blocks_path, use_st_gumbel, l1, monkeypatch):  # noqa: F811
    _, model, _, _ = blocks_model(blocks_path, use_st_gumbel=use_st_gumbel, L1_flag=l1)
    perturb(model, seed=1)
    users = torch.arange(model.n_users)
    scores = model.full_sort_predict(Interaction({"user_id": users}))
    # Blocks of 4 users (the last one shorter) give the same scores.
    monkeypatch.setattr(ktup, "PREFERENCE_CHUNK", 4 * model.n_relations * model.n_items)
    monkeypatch.setattr(ktup, "SCORE_CHUNK", 4 * model.n_items * model.embedding_size)
    torch.testing.assert_close(model.full_sort_predict(Interaction({"user_id": users})), scores, rtol=1e-6, atol=1e-6)
    pairs = Interaction(
        {"user_id": users.repeat_interleave(model.n_items), "item_id": torch.arange(model.n_items).repeat(len(users))}
    )
    torch.testing.assert_close(scores, model.predict(pairs).view(len(users), -1), rtol=1e-5, atol=1e-5)
    # RecBole's pairwise formula without the noise: the preference is the logits' argmax
    with torch.no_grad():
        u, v = model.user_embedding.weight[3], model.item_embedding.weight[7] + model.entity_embedding.weight[7]
        expected = reference_pair(model, u, v, None, use_st_gumbel, l1)
    torch.testing.assert_close(scores[3, 7], expected, rtol=1e-5, atol=0)


def test_scoring_is_deterministic_training_draws_from_the_global_generator(blocks_path):  # noqa: F811
    _, model, _, _ = blocks_model(blocks_path)
    perturb(model, seed=2)
    users = Interaction({"user_id": torch.arange(1, 21)})
    model.train()
    first = model.full_sort_predict(users)
    model.eval()
    assert torch.equal(model.full_sort_predict(users), first)  # no Gumbel noise when scoring, in either mode
    batch = Interaction(
        {"user_id": torch.arange(1, 20), "item_id": torch.arange(1, 20), "neg_item_id": torch.arange(19, 0, -1)}
    )
    torch.manual_seed(0)
    a = model.calculate_loss(batch)[0]
    torch.manual_seed(0)
    b = model.calculate_loss(batch)[0]
    c = model.calculate_loss(batch)[0]
    assert a.item() == b.item() and a.item() != c.item()  # the noise is torch's global generator's


def test_argmax_by_max_pooling_is_the_first_maximum():
    values = torch.randn(26, 7, 300).round(decimals=1)  # many ties
    torch.testing.assert_close(KTUP._argmax_first_dim(values), values.argmax(0), rtol=0, atol=0)


def test_straight_through_gumbel_is_one_hot_forward_softmax_backward():
    torch.manual_seed(0)
    logits = torch.randn(6, 5, requires_grad=True)
    torch.manual_seed(1)
    y = KTUP.st_gumbel_softmax(logits)
    assert torch.equal(y.detach().sum(1), torch.ones(6)) and set(y.detach().unique().tolist()) == {0.0, 1.0}
    weights = torch.randn(6, 5)
    (y * weights).sum().backward()
    torch.manual_seed(1)
    noisy = logits.detach() - torch.log(-torch.log(torch.rand(6, 5) + 1e-20) + 1e-20)
    soft = torch.softmax(noisy, 1)
    expected = soft * (weights - (soft * weights).sum(1, keepdim=True))  # the softmax's Jacobian-vector product
    torch.testing.assert_close(logits.grad, expected)
    assert torch.equal(y.detach().argmax(1), noisy.argmax(1))


def test_initial_tables_are_unit_rows_and_the_schedule_alternates(blocks_path):  # noqa: F811
    config, model, _, _ = blocks_model(blocks_path)
    for name in ("user", "item", "entity", "pref", "pref_norm", "relation", "relation_norm"):
        norms = getattr(model, f"{name}_embedding").weight.norm(dim=1)
        torch.testing.assert_close(norms, torch.ones_like(norms))  # items too (RecBole's typo leaves them out)
    assert (config["train_rec_step"], config["train_kg_step"]) == (5, 5)
    trainer = get_trainer(KTUP)(config, model)
    objectives = trainer.build_objectives()
    assert [(o.loss, o.data, o.schedule) for o in objectives] == [
        ("calculate_loss", "rs", Cycle(10, 0, 5)),
        ("calculate_kg_loss", "kg", Cycle(10, 5, 10)),
    ]


def test_alignment_without_item_entities_is_zero(blocks_path):  # noqa: F811
    _, model, _, _ = blocks_model(blocks_path)
    n = model.n_items
    batch = Interaction(
        {
            "head_id": torch.tensor([n, n + 1]),
            "relation_id": torch.tensor([1, 2]),
            "tail_id": torch.tensor([n + 2, n + 3]),
            "neg_tail_id": torch.tensor([n + 4, n + 1]),
        }
    )
    loss, align = model.calculate_kg_loss(batch)
    assert torch.isfinite(loss) and align.item() == 0.0


def test_bf16_trains(blocks_path, one_thread):  # noqa: F811
    config, model, train, valid = blocks_model(
        blocks_path, precision="bf16", epochs=4, train_rec_step=2, train_kg_step=2
    )
    trainer = get_trainer(KTUP)(config, model)
    trainer.fit(train, valid, verbose=False, saved=False)
    assert len(trainer.train_loss_dict) == 4 and all(np.isfinite(v) for v in trainer.train_loss_dict.values())
    users = Interaction({"user_id": torch.arange(1, 21)})
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the full ranking runs in float32 under autocast
        scores = model.full_sort_predict(users)
    assert scores.dtype == torch.float32 and torch.equal(scores, model.full_sort_predict(users))
