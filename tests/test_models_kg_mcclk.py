"""MCCLK: the contract, RecBole's forward pass and losses recomputed row by row, bf16, the k-NN semantic graph,
dropout (training only), the evaluation cache and the count-weighted contrastive loss."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from recforge import create_dataset, data_preparation
from recforge.data.interaction import Interaction
from recforge.errors import ConfigError
from recforge.models.knowledge.mcclk_layers import (
    Edges,
    cross_view_loss,
    knn_graph,
    mean_graph,
    sparse_dropout,
    user_mean_matrix,
)
from recforge.registry import get_model_class, get_trainer
from test_models import blocks_config, blocks_path, check_contract  # noqa: F401

SETTINGS = {"learning_rate": 0.05, "epochs": 10, "train_batch_size": 32}
EXACT = {"node_dropout_rate": 0.0, "mess_dropout_rate": 0.0, "train_batch_size": 64}


def build(path, **settings):
    config = blocks_config(path, "MCCLK", **settings)
    train, valid, _ = data_preparation(config, create_dataset(config))
    model = get_model_class("MCCLK")(config, train.dataset)
    with torch.no_grad():  # away from the initialisation, so that every term matters
        for parameter in model.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    return config, train, valid, model


# -- RecBole's formulas, written row by row (float64) ---------------------------------------------------------
def reference_tables(model, dataset):
    """RecBole's MCCLK.forward without dropout: (item_semantic, user_lightgcn, item_lightgcn, user_gcn, entity_gcn)
    over all entities, RecBole's [n_users + n_entities] graphs as dense matrices."""
    n_users, n_entities = model.n_users, model.n_entities
    entity = model.entity_embedding.weight.detach().double()
    user = model.user_embedding.weight.detach().double()
    relation = model.relation_embedding.weight.detach().double()
    heads, relations, tails = dataset.head_entities, dataset.relations, dataset.tail_entities
    adjacency = torch.zeros(n_users + n_entities, n_users + n_entities, dtype=torch.float64)
    for u, i in zip(dataset.inter_feat["user_id"], dataset.inter_feat["item_id"], strict=True):
        adjacency[u, n_users + i] = adjacency[n_users + i, u] = 1.0
    rowsum = adjacency.sum(1, keepdim=True)
    graph = torch.where(rowsum > 0, adjacency / rowsum.clamp(min=1e-30), torch.zeros_like(adjacency))  # D^-1 A
    inter = graph[:n_users, n_users:]

    def aggregate(e, attention):
        agg = torch.zeros_like(e)
        for h in range(n_entities):
            edges = [k for k in range(len(heads)) if heads[k] == h]
            if not edges:
                continue
            messages = torch.stack([e[tails[k]] * relation[relations[k]] for k in edges])
            if attention:
                scores = torch.stack(
                    [
                        ((e[h] * relation[relations[k]]).norm() * (e[tails[k]] * relation[relations[k]]).norm()) ** 2
                        for k in edges
                    ]
                )
                messages = torch.softmax(scores, dim=0).unsqueeze(1) * messages
            agg[h] = messages.sum(0) / len(edges)
        return agg

    def build_adj(context):
        unit = context / context.norm(dim=1, keepdim=True)
        values, index = torch.topk(unit @ unit.T, model.k, dim=-1)
        dense = torch.zeros(len(context), len(context), dtype=torch.float64)
        for i in range(len(context)):
            dense[i, index[i]] = values[i]
        d = dense.sum(1).pow(-0.5)
        return torch.diag(d) @ dense @ torch.diag(d)

    e, u, entity_layers, user_layers = entity, user, [entity], [user]
    for _ in range(model.n_hops):
        user_agg = inter @ e
        score = torch.softmax(u @ relation.T, dim=-1)
        user_agg = user_agg + (score @ relation) * user_agg
        e, u = F.normalize(aggregate(e, attention=True)), F.normalize(user_agg)
        entity_layers.append(e)
        user_layers.append(u)
    entity_gcn, user_gcn = torch.stack(entity_layers).mean(0), torch.stack(user_layers).mean(0)
    if model.build_graph_separately:
        e, layers = entity, [entity]
        for _ in range(model.n_hops):
            e = F.normalize(aggregate(e, attention=False))
            layers.append(e)
        updated = torch.stack(layers).mean(0)
    else:
        updated = entity_gcn
    nodes = model.knn_nodes
    item_adj = (1 - model.lambda_coeff) * build_adj(updated[:nodes]) + model.lambda_coeff * build_adj(entity[:nodes])
    semantic = [entity[:nodes]]
    for _ in range(model.item_agg_layer):
        semantic.append(item_adj @ semantic[-1])
    layers = [torch.cat([user, entity])]
    for _ in range(model.lightgcn_layer):
        layers.append(graph @ layers[-1])
    user_cf, item_cf = torch.stack(layers).mean(0).split([n_users, n_entities])
    return torch.stack(semantic).mean(0), user_cf, item_cf, user_gcn, entity_gcn


def reference_semi_loss(fc, a, b, tau, both_ways):
    """RecBole's local_level_loss / global_level_loss_*: [N, N] matrices over the batch rows, repeats included."""

    def sim(x, y):
        return F.normalize(x) @ F.normalize(y).T

    a, b = fc(a), fc(b)
    refl, between = torch.exp(sim(a, a) / tau), torch.exp(sim(a, b) / tau)
    loss = -torch.log(between.diag() / (refl.sum(1) + between.sum(1) - refl.diag()))
    if both_ways:
        refl_2, between_2 = torch.exp(sim(b, b) / tau), torch.exp(sim(b, a) / tau)
        loss = (loss - torch.log(between_2.diag() / (refl_2.sum(1) + between_2.sum(1) - refl_2.diag()))) * 0.5
    return loss.mean()


def reference_loss(model, dataset, batch):
    semantic, user_cf, item_cf, user_gcn, entity_gcn = reference_tables(model, dataset)
    user, pos, neg = batch["user_id"], batch["item_id"], batch["neg_item_id"]
    every = torch.cat([pos, neg])
    fc1, fc2, fc3 = (copy.deepcopy(fc).double() for fc in (model.fc1, model.fc2, model.fc3))
    tau = model.temperature
    local = reference_semi_loss(fc1, semantic[every], item_cf[every], tau, False)
    global_loss = reference_semi_loss(fc2, user_gcn[user], user_cf[user], tau, True) + reference_semi_loss(
        fc3, entity_gcn[every], semantic[every] + item_cf[every], tau, True
    )
    user_e = torch.cat([user_gcn[user], user_cf[user]], -1)
    pos_e = torch.cat([entity_gcn[pos], semantic[pos] + item_cf[pos]], -1)
    neg_e = torch.cat([entity_gcn[neg], semantic[neg] + item_cf[neg]], -1)
    pos_scores, neg_scores = (user_e * pos_e).sum(1), (user_e * neg_e).sum(1)
    if model.loss_type == "BPR":
        rec = -torch.log(1e-10 + torch.sigmoid(pos_scores - neg_scores)).mean()
    else:
        target = torch.cat([torch.ones_like(pos_scores), torch.zeros_like(neg_scores)])
        rec = F.binary_cross_entropy_with_logits(torch.cat([pos_scores, neg_scores]), target)
    reg = sum(x.norm() for x in (user_e, pos_e, neg_e)) / len(user)
    contrastive = model.beta * (model.alpha * local + (1 - model.alpha) * global_loss)
    return rec, model.reg_weight * reg, contrastive


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"build_graph_separately": False, "loss_type": "BCE", "temperature": 0.5},
        {"knn_over_entities": True, "item_agg_layer": 2, "k": 4, "lambda_coeff": 0.3, "alpha": 0.6},
    ],
)
def test_loss_matches_recbole_formula(blocks_path, settings):  # noqa: F811
    _, train, _, model = build(blocks_path, **EXACT, **settings)
    batch = next(iter(train))
    assert len(torch.unique(torch.cat([batch["item_id"], batch["neg_item_id"]]))) < 2 * len(batch)  # repeats
    got = model.calculate_loss(batch)
    expected = reference_loss(model, train.dataset, batch)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g.double(), e, rtol=2e-4, atol=0)
    # Scores: the same tables (evaluation runs without dropout, here none anyway).
    semantic, user_cf, item_cf, user_gcn, entity_gcn = reference_tables(model, train.dataset)
    users, n = torch.arange(1, model.n_users), model.n_items
    items = torch.cat([entity_gcn[:n], semantic[:n] + item_cf[:n]], 1)
    expected_scores = torch.cat([user_gcn, user_cf], 1)[users] @ items.T
    if model.loss_type == "BCE":
        expected_scores = torch.sigmoid(expected_scores)
    scores = model.full_sort_predict(Interaction({"user_id": users}))
    torch.testing.assert_close(scores.double(), expected_scores, rtol=2e-4, atol=1e-6)


def test_bf16_trains(blocks_path):  # noqa: F811
    config, train, valid, model = build(blocks_path, precision="bf16", epochs=3)
    trainer = get_trainer(type(model))(config, model, run_dir=blocks_path / "run")
    trainer.fit(train, valid, verbose=False, saved=False)
    assert all(np.isfinite(v) for v in trainer.train_loss_dict.values())
    scores = model.full_sort_predict(Interaction({"user_id": torch.arange(1, 21)}))
    assert scores.dtype == torch.float32 and torch.isfinite(scores).all()


# -- the model's own behaviours --------------------------------------------------------------------------------
def test_knn_graph_rows():
    context = torch.randn(30, 8, generator=torch.Generator().manual_seed(0))
    graph = knn_graph(context, 5)
    assert graph.index.shape == graph.weights.shape == (30, 5)
    assert (graph.index[:, 0] == torch.arange(30)).all()  # every row is its own nearest neighbour
    unit = F.normalize(context)
    similarity = unit @ unit.T
    for i in range(30):
        top = sorted(range(30), key=lambda j: -float(similarity[i, j]))[:5]
        assert sorted(graph.index[i].tolist()) == sorted(top)
    rowsum = similarity.gather(1, graph.index).sum(1)
    expected = similarity.gather(1, graph.index) / (rowsum[:, None] * rowsum[graph.index]).sqrt()
    torch.testing.assert_close(graph.weights, expected)


def test_knn_graph_in_blocks(monkeypatch):
    context = torch.randn(50, 6, generator=torch.Generator().manual_seed(1))
    whole = knn_graph(context, 7)
    monkeypatch.setattr("recforge.models.knowledge.mcclk_layers.KNN_BLOCK_ELEMENTS", 3 * 50)  # blocks of 3 rows
    blocked = knn_graph(context, 7)
    assert torch.equal(whole.index, blocked.index)
    torch.testing.assert_close(whole.weights, blocked.weights)


@pytest.mark.parametrize("over_entities", [False, True])
def test_semantic_graph_nodes(blocks_path, over_entities):  # noqa: F811
    _, _, _, model = build(blocks_path, knn_over_entities=over_entities)
    model.eval()
    with torch.no_grad():
        _, entities = model.structural_view(model.relation_embedding.weight)
        graph = model.semantic_graph(entities, model.relation_embedding.weight)
    nodes = model.n_entities if over_entities else model.n_items
    assert graph.index.shape == (nodes, 2 * model.k) and int(graph.index.max()) < nodes
    assert not graph.weights.requires_grad  # a constant, as RecBole's (it detaches the values)
    assert model.views().item_semantic.shape == (model.n_items, model.config["embedding_size"])


def test_interaction_graphs_average():
    users, items = torch.tensor([1, 1, 2, 3, 3, 3]), torch.tensor([1, 2, 2, 0, 1, 2])
    graph = mean_graph(users, items, 4, 3)
    dense = graph.matrix.to_dense()
    assert torch.equal(graph.transposed.to_dense(), dense.T)
    sums = dense.sum(1)
    torch.testing.assert_close(sums[sums > 0], torch.ones(int((sums > 0).sum())))
    assert dense[0].sum() == 0  # user 0 has no items
    block = user_mean_matrix(users, items, 4, 3)
    assert torch.equal(block.matrix.to_dense(), dense[:4, 4:])
    assert torch.equal(block.transposed.to_dense(), dense[:4, 4:].T)
    torch.manual_seed(0)
    dropped = sparse_dropout(block, 0.5)
    values = dropped.matrix.values()
    kept = values != 0
    torch.testing.assert_close(values[kept], 2 * block.matrix.values()[kept])
    assert torch.equal(dropped.transposed.to_dense(), dropped.matrix.to_dense().T)


def test_edge_dropout_keeps_a_share():
    edges = Edges(torch.arange(10), torch.arange(10) % 3, torch.arange(10).flip(0))
    sampled = edges.sample(0.3)
    assert len(sampled.head) == 7 and len(set(sampled.head.tolist())) == 7
    assert torch.equal(sampled.tail, 9 - sampled.head) and torch.equal(sampled.relation, sampled.head % 3)


def test_dropout_only_while_training(blocks_path, monkeypatch):  # noqa: F811
    _, train, _, model = build(blocks_path)
    model.train()
    first, second = model.views(), model.views()
    assert not torch.equal(first.user_kg, second.user_kg)  # triples, user-item entries and messages dropped
    model.eval()
    first, second = model.views(), model.views()
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)
    # The evaluation tables are computed once per evaluation and dropped when training resumes.
    calls = []
    views = model.views
    monkeypatch.setattr(model, "views", lambda: calls.append(1) or views())
    users = Interaction({"user_id": torch.arange(1, 5)})
    model.full_sort_predict(users)
    model.predict(Interaction({"user_id": torch.tensor([1]), "item_id": torch.tensor([2])}))
    assert len(calls) == 1
    model.train()
    model.full_sort_predict(users)
    assert len(calls) == 2 and model.training  # scored without dropout, then back to training mode


def test_count_weighted_contrast_equals_repeated_rows():
    generator = torch.Generator().manual_seed(2)
    a, b = torch.randn(5, 4, generator=generator), torch.randn(5, 4, generator=generator)
    counts = torch.tensor([1.0, 3.0, 1.0, 2.0, 1.0])
    repeat = torch.repeat_interleave(torch.arange(5), counts.long())
    identity = torch.nn.Identity()
    for both_ways in (False, True):
        expected = reference_semi_loss(identity, a[repeat], b[repeat], 0.5, both_ways)
        torch.testing.assert_close(cross_view_loss(a, b, counts, 0.5, both_ways), expected)


def test_settings_checked(blocks_path):  # noqa: F811
    with pytest.raises(ConfigError, match="node_dropout_rate"):
        build(blocks_path, node_dropout_rate=1.0)
    _, train, _, model = build(blocks_path)
    batch = next(iter(train))
    several = Interaction(
        {"user_id": batch["user_id"], "item_id": batch["item_id"], "neg_item_id": batch["neg_item_id"][:, None]}
    )
    with pytest.raises(ValueError, match="one negative"):
        model.calculate_loss(several)
