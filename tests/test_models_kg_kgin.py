"""KGIN: the contract, RecBole's propagation and losses recomputed row by row, the independence losses, bf16, node
dropout (training only) and the evaluation cache."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from recforge import create_dataset, data_preparation
from recforge.data.interaction import Interaction
from recforge.errors import ConfigError
from recforge.models.knowledge.kgin import independence_loss
from recforge.registry import get_model_class, get_trainer
from test_models import blocks_config, blocks_path, check_contract  # noqa: F401

SETTINGS = {"learning_rate": 0.05, "epochs": 8, "train_batch_size": 32}
EXACT = {"node_dropout_rate": 0.0, "mess_dropout_rate": 0.0}


def build(path, **settings):
    config = blocks_config(path, "KGIN", **settings)
    train, valid, _ = data_preparation(config, create_dataset(config))
    model = get_model_class("KGIN")(config, train.dataset)
    with torch.no_grad():  # away from the initialisation, so that every term matters
        for parameter in model.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    return config, train, valid, model


# -- RecBole's formulas, written row by row ---------------------------------------------------------------------------
def reference_propagation(model, dataset):
    """RecBole's GraphConv without dropout, in float64: per hop, every entity's mean over its triples (h, r, t) of
    e_t * e_r, every user's mean over its distinct items of e_i, weighted by (1 + its intent mixture)."""
    entity = model.entity_embedding.weight.detach().double()
    user = model.user_embedding.weight.detach().double()
    relation = model.relation_embedding.weight.detach().double()
    latent = model.latent_embedding.weight.detach().double()
    disen = torch.softmax(model.disen_weight_att.detach().double(), dim=-1) @ relation
    heads, relations, tails = dataset.head_entities, dataset.relations, dataset.tail_entities
    users, items = dataset.inter_feat["user_id"], dataset.inter_feat["item_id"]
    entity_sum, user_sum = entity.clone(), user.clone()
    for _ in range(model.context_hops):
        entity_agg = torch.zeros_like(entity)
        for h in range(model.n_entities):
            edges = [k for k in range(len(heads)) if heads[k] == h]
            if edges:
                entity_agg[h] = sum(entity[tails[k]] * relation[relations[k]] for k in edges) / len(edges)
        user_agg = torch.zeros_like(user)
        for u in range(model.n_users):
            own = sorted({int(i) for i, v in zip(items, users, strict=True) if v == u})
            if own:
                user_agg[u] = sum(entity[i] for i in own) / len(own)
        score = torch.softmax(user @ latent.T, dim=1)
        user_agg = (score @ disen) * user_agg + user_agg
        entity, user = F.normalize(entity_agg, dim=1), F.normalize(user_agg, dim=1)
        entity_sum, user_sum = entity_sum + entity, user_sum + user
    return user_sum, entity_sum


def reference_cosine(weights):
    total = 0.0
    for i in range(len(weights)):
        for j in range(i + 1, len(weights)):
            a, b = F.normalize(weights[i], dim=0), F.normalize(weights[j], dim=0)
            total = total + (a * b).sum() ** 2
    return total


def reference_distance(weights):
    def correlation(x, y):
        n = len(x)

        def centred(v):
            d = torch.tensor([[float(max((v[k] - v[m]) ** 2, 0.0) + 1e-8) ** 0.5 for m in range(n)] for k in range(n)])
            return d - d.mean(dim=0, keepdim=True) - d.mean(dim=1, keepdim=True) + d.mean()

        a, b = centred(x), centred(y)

        def dcov(p, q):
            return (max(float((p * q).sum()) / n**2, 0.0) + 1e-8) ** 0.5

        return dcov(a, b) / (dcov(a, a) * dcov(b, b) + 1e-8) ** 0.5

    return sum(correlation(weights[i], weights[j]) for i in range(len(weights)) for j in range(i + 1, len(weights)))


def reference_mi(weights, temperature):
    unit = F.normalize(weights, dim=1)
    scores = torch.exp(unit @ unit.T / temperature)
    return -torch.sum(torch.log(scores.diag() / scores.sum(1)))


def reference_independence(weights, ind, temperature):
    if ind == "mi":
        return reference_mi(weights, temperature)
    value = reference_cosine(weights) if ind == "cosine" else reference_distance(weights)
    return torch.as_tensor(value, dtype=torch.float64)


@pytest.mark.parametrize("hops", [1, 2, 3])
def test_propagation_equals_recbole_formula(blocks_path, hops):  # noqa: F811
    _, train, _, model = build(blocks_path, context_hops=hops, **EXACT)
    model.eval()
    users, items = model.propagate_embeddings()
    expected_users, expected_entities = reference_propagation(model, train.dataset)
    torch.testing.assert_close(users.double(), expected_users, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(items.double(), expected_entities[: model.n_items], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("ind", ["cosine", "distance", "mi"])
def test_loss_equals_recbole_formula(blocks_path, ind):  # noqa: F811
    _, train, _, model = build(blocks_path, ind=ind, reg_weight=0.01, sim_regularity=0.1, **EXACT)
    batch = next(iter(train))
    model.train()
    mf, reg, cor = model.calculate_loss(batch)
    users, entities = reference_propagation(model, train.dataset)
    u, p, n = users[batch["user_id"]], entities[batch["item_id"]], entities[batch["neg_item_id"]]
    pos, neg = (u * p).sum(1), (u * n).sum(1)
    expected_mf = torch.stack([-torch.log(1e-10 + torch.sigmoid(pos[k] - neg[k])) for k in range(len(u))]).mean()
    expected_reg = (u.norm() + p.norm() + n.norm()) / len(u)
    expected_cor = reference_independence(model.disen_weight_att.detach().double(), ind, 0.2)
    torch.testing.assert_close(mf.double(), expected_mf, rtol=1e-5, atol=0)
    torch.testing.assert_close(reg.double(), 0.01 * expected_reg, rtol=1e-5, atol=0)
    torch.testing.assert_close(cor.double(), 0.1 * expected_cor, rtol=1e-5, atol=0)


@pytest.mark.parametrize("ind", ["cosine", "distance", "mi"])
def test_independence_losses_on_random_weights(ind):
    weights = torch.randn(5, 9, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    got = independence_loss(weights, ind, 0.5)
    torch.testing.assert_close(got, reference_independence(weights, ind, 0.5), rtol=1e-6, atol=0)
    assert got > 0
    # Identical intents are the least independent: cosine 1 per pair, distance correlation 1 per pair.
    same = independence_loss(weights[:1].repeat(3, 1), ind, 0.5)
    if ind != "mi":
        torch.testing.assert_close(same, torch.tensor(3.0, dtype=torch.float64), rtol=1e-4, atol=0)


def test_graph_structures(blocks_path):  # noqa: F811
    _, train, _, model = build(blocks_path)
    ds = train.dataset
    heads = np.unique(ds.head_entities)
    assert model.n_heads == len(heads) == 20  # every item heads 3 triples; genres, tags head none
    assert model.head_count.tolist() == [3.0] * 20
    assert model.tails_of_pairs.values().sum() == len(ds.head_entities) == 60
    # Later hops see the tails that head triples: the "similar" neighbours (items), one per item.
    assert model.head_tails_of_pairs.values().sum() == 20
    assert model.pair_sum.nnz == 60  # (head, relation) pairs: each item has three relations
    degree = np.bincount(ds.inter_feat["user_id"], minlength=model.n_users)
    row_sums = model.interactions.matrix.to_dense().sum(1)
    torch.testing.assert_close(row_sums, torch.from_numpy((degree > 0).astype(np.float32)))
    assert model.interactions.transposed.to_dense().T.equal(model.interactions.matrix.to_dense())


def test_node_dropout_in_training_only(blocks_path):  # noqa: F811
    _, _, _, model = build(blocks_path, node_dropout_rate=0.5)
    model.train()
    torch.manual_seed(0)
    tails, head_tails, counts, users = model.graph_values()
    assert counts.sum() == tails.sum() == 30  # int(60 x (1 - 0.5)) triples kept
    assert 0 < head_tails.sum() < 20
    base = model.interactions.values()
    assert ((users == 0) | torch.isclose(users, 2 * base)).all()  # dropped, or kept x 1 / (1 - p)
    assert 0 < (users == 0).sum() < len(users)
    first = model.propagate_embeddings()[1]
    assert not torch.equal(first, model.propagate_embeddings()[1])  # a new draw each step
    model.eval()
    assert model.graph_values()[:2] == (None, None)
    scores = model.full_sort_predict(Interaction({"user_id": torch.arange(1, 5)}))
    config, train, _, _ = build(blocks_path, **EXACT)
    plain = get_model_class("KGIN")(config, train.dataset)
    plain.load_state_dict(model.state_dict())
    plain.eval()
    torch.testing.assert_close(plain.full_sort_predict(Interaction({"user_id": torch.arange(1, 5)})), scores)


def test_message_dropout_in_training_only(blocks_path):  # noqa: F811
    _, _, _, model = build(blocks_path, node_dropout_rate=0.0, mess_dropout_rate=0.5)
    model.train()
    assert not torch.equal(model.propagate_embeddings()[0], model.propagate_embeddings()[0])
    model.eval()
    assert torch.equal(model.propagate_embeddings()[0], model.propagate_embeddings()[0])


def test_evaluation_cache(blocks_path):  # noqa: F811
    _, _, _, model = build(blocks_path)
    calls = []
    original = model.propagate_embeddings
    model.propagate_embeddings = lambda: calls.append(1) or original()
    model.eval()
    users = Interaction({"user_id": torch.arange(1, 4)})
    first = model.full_sort_predict(users)
    assert torch.equal(model.full_sort_predict(users), first) and len(calls) == 1
    model.train()
    model.eval()
    model.full_sort_predict(users)
    assert len(calls) == 2
    model.load_state_dict(model.state_dict())
    model.full_sort_predict(users)
    assert len(calls) == 3


def test_several_negatives(blocks_path):  # noqa: F811
    _, train, _, model = build(blocks_path, **EXACT)
    batch = next(iter(train))
    negatives = torch.stack([batch["neg_item_id"], batch["item_id"].flip(0)], dim=1)
    several = Interaction({"user_id": batch["user_id"], "item_id": batch["item_id"], "neg_item_id": negatives})
    mf, _, _ = model.calculate_loss(several)
    users, items = model.propagate_embeddings()
    u, p, n = users[batch["user_id"]], items[batch["item_id"]], items[negatives]
    expected = -torch.log(1e-10 + torch.sigmoid((u * p).sum(-1, keepdim=True) - (u[:, None] * n).sum(-1))).mean()
    torch.testing.assert_close(mf, expected)


def test_bf16_trains(blocks_path):  # noqa: F811
    config, train, valid, model = build(blocks_path, precision="bf16", epochs=3, ind="distance")
    trainer = get_trainer(type(model))(config, model, run_dir=blocks_path / "run")
    trainer.fit(train, valid, verbose=False, saved=False)
    assert all(np.isfinite(v) for v in trainer.train_loss_dict.values())
    scores = model.full_sort_predict(Interaction({"user_id": torch.arange(1, 21)}))
    assert scores.dtype == torch.float32 and torch.isfinite(scores).all()


def test_node_dropout_rate_below_one(blocks_path):  # noqa: F811
    with pytest.raises(ConfigError, match="node_dropout_rate"):
        build(blocks_path, node_dropout_rate=1.0)
