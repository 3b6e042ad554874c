"""KGCN and KGNNLS: the contract, RecBole's losses recomputed row by row, bf16, the neighbour and label tables."""

import math

import pytest
import torch

from recforge import create_dataset, data_preparation
from recforge.data.interaction import Interaction
from recforge.models.graph import interactions
from recforge.models.knowledge import kgcn
from recforge.models.knowledge.kgcn import sample_neighbours
from recforge.registry import get_model_class, get_trainer
from test_models import blocks_config, blocks_path, check_contract  # noqa: F401

SETTINGS = {"learning_rate": 0.05, "epochs": 15, "train_batch_size": 32}


def build(path, name, **settings):
    config = blocks_config(path, name, show_progress=False, **settings)
    train, valid, _ = data_preparation(config, create_dataset(config))
    model = get_model_class(name)(config, train.dataset)
    with torch.no_grad():  # non-zero biases, so that the reference checks them too
        for layer in model.linear_layers:
            layer.bias.normal_(0, 0.3)
    return config, train, valid, model


# -- RecBole's formulas, one (user, item) pair at a time ------------------------------------------------------------
def reference_item_vector(model, user, item):
    """v_i^u: RecBole's aggregation written as a recursion over the sampled neighbours of one entity."""
    u = model.user_embedding.weight[user]
    entity, relation = model.entity_embedding.weight, model.relation_embedding.weight

    def vector(t, e):
        if t == 0:
            return entity[e]
        neighbours = torch.stack([vector(t - 1, int(n)) for n in model.adj_entity[e]])
        weights = torch.softmax((u * relation[model.adj_relation[e]]).mean(-1), dim=0)
        mixed = (weights[:, None] * neighbours).mean(0)
        own = vector(t - 1, e)
        combined = {"sum": own + mixed, "neighbor": mixed, "concat": torch.cat([own, mixed])}[model.aggregator]
        output = model.linear_layers[t - 1](combined)
        return torch.tanh(output) if t == model.n_iter else torch.relu(output)

    return vector(model.n_iter, item)


def reference_label(model, table, user, item):
    """RecBole's label_smoothness_predict for one pair, as a recursion: labels from ``table`` (0.5 when absent),
    the pair's item held out, labelled entities kept, the others replaced by mean(softmax weights x labels)."""
    u = model.user_embedding.weight[user]
    relation = model.relation_embedding.weight

    def key(e):
        return user * model.n_entities + e

    def label(t, e):
        if t == 0:
            return torch.tensor(0.5 if e == item else table.get(key(e), 0.5))
        if e != item and table.get(key(e), 0.5) != 0.5:
            return label(t - 1, e)
        labels = torch.stack([label(t - 1, int(n)) for n in model.adj_entity[e]])
        weights = torch.softmax((u * relation[model.adj_relation[e]]).mean(-1), dim=0)
        return (weights * labels).mean()

    return label(model.n_iter, item)


def bce_with_logits(logit, target):
    probability = 1 / (1 + math.exp(-logit))
    return -math.log(probability) if target == 1 else -math.log(1 - probability)


def a_batch(train):
    batch = next(iter(train))
    return batch["user_id"], batch["item_id"], batch["neg_item_id"]


@pytest.mark.parametrize(("aggregator", "n_iter"), [("sum", 1), ("sum", 2), ("neighbor", 2), ("concat", 2)])
def test_kgcn_loss_and_scores_equal_recbole_formula(blocks_path, aggregator, n_iter):  # noqa: F811
    _, train, _, model = build(
        blocks_path, "KGCN", aggregator=aggregator, n_iter=n_iter, neighbor_sample_size=3, reg_weight=0.05,
        train_batch_size=8,
    )  # fmt: skip
    users, positives, negatives = a_batch(train)
    loss = model.calculate_loss(Interaction({"user_id": users, "item_id": positives, "neg_item_id": negatives}))
    with torch.no_grad():
        user_rows, terms, pos_rows, neg_rows = [], [], [], []
        for u, p, n in zip(users.tolist(), positives.tolist(), negatives.tolist(), strict=True):
            e_u, v_p, v_n = (
                model.user_embedding.weight[u],
                reference_item_vector(model, u, p),
                reference_item_vector(model, u, n),
            )
            terms += [bce_with_logits(float(e_u @ v_p), 1), bce_with_logits(float(e_u @ v_n), 0)]
            user_rows.append(e_u), pos_rows.append(v_p), neg_rows.append(v_n)
        norms = sum(float(torch.stack(rows).pow(2).sum().sqrt()) for rows in (user_rows, pos_rows, neg_rows))
        expected = sum(terms) / len(terms) + 0.05 * norms / len(users)
        torch.testing.assert_close(loss.item(), expected, rtol=1e-5, atol=0)
        pairs = Interaction({"user_id": users, "item_id": positives})
        expected_scores = torch.stack([e @ v for e, v in zip(user_rows, pos_rows, strict=True)])
        torch.testing.assert_close(model.predict(pairs), expected_scores, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n_iter", [1, 2])
def test_kgnnls_loss_equals_recbole_formula(blocks_path, n_iter):  # noqa: F811
    _, train, _, model = build(
        blocks_path, "KGNNLS", n_iter=n_iter, neighbor_sample_size=3, reg_weight=0.05, train_batch_size=8
    )
    table = dict(zip(model.label_keys.tolist(), model.label_values.tolist(), strict=True))
    users, positives, negatives = a_batch(train)
    loss = model.calculate_loss(Interaction({"user_id": users, "item_id": positives, "neg_item_id": negatives}))
    with torch.no_grad():
        both_users, both_items = torch.cat([users, users]).tolist(), torch.cat([positives, negatives]).tolist()
        targets = [1] * len(users) + [0] * len(users)
        rec, ls, user_rows, item_rows, labels = [], [], [], [], []
        for u, i, y in zip(both_users, both_items, targets, strict=True):
            e_u, v_i = model.user_embedding.weight[u], reference_item_vector(model, u, i)
            label = reference_label(model, table, u, i)
            rec.append(bce_with_logits(float(e_u @ v_i), y))
            ls.append(bce_with_logits(float(label), y))
            user_rows.append(e_u), item_rows.append(v_i), labels.append(float(label))
        norms = sum(float(torch.stack(rows).pow(2).sum().sqrt()) for rows in (user_rows, item_rows))
        expected = sum(rec) / len(rec) + 0.5 * sum(ls) / len(ls) + 0.05 * norms / len(rec)
        torch.testing.assert_close(loss.item(), expected, rtol=1e-5, atol=0)
        # The propagation is not trivial here: some predicted labels differ from the unlabelled 0.5.
        assert any(abs(label - 0.5) > 1e-3 for label in labels)


@pytest.mark.parametrize("name", ["KGCN", "KGNNLS"])
def test_bf16_training_gives_finite_losses(blocks_path, name):  # noqa: F811
    config, train, valid, model = build(blocks_path, name, precision="bf16", epochs=3, n_iter=2)
    trainer = get_trainer(type(model))(config, model, run_dir=blocks_path / "run")
    trainer.fit(train, valid, verbose=False, saved=False)
    losses = list(trainer.train_loss_dict.values())
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)


# -- the neighbour table ---------------------------------------------------------------------------------------------
def test_neighbour_table_samples_the_undirected_graph_uniformly():
    hubs, k = 3000, 4
    # Hub h has 10 edges (as head: relation 1 to leaves), entity "twin" 2 edges (one as head, one as tail).
    heads = torch.arange(hubs).repeat_interleave(10)
    tails = hubs + torch.arange(hubs * 10)
    relations = torch.ones_like(heads)
    n = hubs * 11
    twin_heads, twin_tails = torch.tensor([n, n + 1]), torch.tensor([n + 1, n + 2])
    heads, tails = torch.cat([heads, twin_heads]), torch.cat([tails, twin_tails])
    relations = torch.cat([relations, torch.tensor([2, 3])])
    adj_entity, adj_relation = sample_neighbours(heads, relations, tails, n + 4, k, torch.Generator().manual_seed(0))
    assert adj_entity.shape == adj_relation.shape == (n + 4, k)
    # Hubs (10 edges >= k): k distinct neighbours among their own, every leaf drawn with probability k / 10.
    hub_rows = adj_entity[:hubs] - hubs - 10 * torch.arange(hubs)[:, None]
    assert ((hub_rows >= 0) & (hub_rows < 10)).all() and (adj_relation[:hubs] == 1).all()
    assert (hub_rows.sort(dim=1).values.diff(dim=1) > 0).all()
    frequency = torch.bincount(hub_rows.flatten(), minlength=10) / hubs
    assert torch.allclose(frequency, torch.full((10,), k / 10), atol=0.03)
    # Leaves (1 edge, as tail): their hub k times, the triple read backwards with its relation.
    leaves = torch.arange(hubs, n)
    assert (adj_entity[leaves] == ((leaves - hubs) // 10)[:, None]).all() and (adj_relation[leaves] == 1).all()
    # The middle of the chain has 2 edges < k: drawn with replacement from {n (relation 2), n + 2 (relation 3)}.
    middle = adj_entity[n + 1]
    assert set(middle.tolist()) <= {n, n + 2}
    assert (adj_relation[n + 1] == torch.where(middle == n, 2, 3)).all()
    # The entity without an edge has itself, with the padding relation 0.
    assert adj_entity[n + 3].tolist() == [n + 3] * k and adj_relation[n + 3].tolist() == [0] * k
    # With replacement the k draws are independent: in a chain (2 edges each) all k are one neighbour 2 / 2^k.
    chain = sample_neighbours(
        torch.arange(0, 3000), torch.ones(3000, dtype=torch.long), torch.arange(1, 3001), 3001, 4,
        torch.Generator().manual_seed(2),
    )[0][1:3000]  # fmt: skip
    all_same = (chain == chain[:, :1]).all(dim=1).float().mean()
    assert abs(float(all_same) - 2 * 0.5**4) < 0.03


def test_tables_are_seeded_buffers_that_follow_the_knowledge_graph(blocks_path):  # noqa: F811
    config, train, _, model = build(blocks_path, "KGCN")
    again = get_model_class("KGCN")(config, train.dataset)
    assert torch.equal(model.adj_entity, again.adj_entity) and torch.equal(model.adj_relation, again.adj_relation)
    other = get_model_class("KGCN")(blocks_config(blocks_path, "KGCN", seed=7), train.dataset)
    assert not torch.equal(model.adj_entity, other.adj_entity)
    assert {"adj_entity", "adj_relation"} <= set(model.state_dict())
    heads, relations, tails = model.triples(train.dataset)
    edges = set(zip(heads.tolist(), tails.tolist(), relations.tolist(), strict=True))
    edges |= {(t, h, r) for h, t, r in edges}
    for e in range(1, model.n_entities):
        for n, r in zip(model.adj_entity[e].tolist(), model.adj_relation[e].tolist(), strict=True):
            assert (e, n, r) in edges
    assert model.adj_entity[0].tolist() == [0] * model.neighbor_sample_size  # padding: no triple
    assert model.relation_embedding.num_embeddings == model.n_relations + 1  # RecBole's extra row


def test_kgnnls_interaction_table(blocks_path):  # noqa: F811
    _, train, _, model = build(blocks_path, "KGNNLS")
    users, items = (torch.from_numpy(a) for a in interactions(train.dataset))
    positives = set((users * model.n_entities + items).tolist())
    keys, values = model.label_keys, model.label_values
    assert (keys.diff() > 0).all()  # sorted and distinct, for searchsorted
    assert set(keys[values == 1].tolist()) == positives
    negatives = keys[values == 0]
    # As many draws as positives, with replacement, so some repeat; among real users and items, never a positive.
    assert 0.6 * len(positives) < len(negatives) <= len(positives)
    assert ((negatives // model.n_entities >= 1) & (negatives // model.n_entities < model.n_users)).all()
    assert ((negatives % model.n_entities >= 1) & (negatives % model.n_entities < model.n_items)).all()
    lookup = model.labels(users[:3], torch.stack([items[:3], items[:3] + 1, items[:3] * 0 + model.n_items], 1)[:, None])
    assert lookup[:, 0, 0].tolist() == [1.0] * 3 and lookup[:, 0, 2].tolist() == [0.5] * 3
    assert {"label_keys", "label_values"} <= set(model.state_dict())


def test_full_sort_in_chunks_and_user_specific_item_vectors(blocks_path, monkeypatch):  # noqa: F811
    _, _, _, model = build(blocks_path, "KGCN", n_iter=2)
    users = torch.arange(1, 21)
    with torch.no_grad():
        whole = model.full_sort_predict(Interaction({"user_id": users}))
        monkeypatch.setattr(kgcn, "FULL_SORT_BUDGET", 1)  # one item per chunk
        torch.testing.assert_close(model.full_sort_predict(Interaction({"user_id": users})), whole)
        item_e = model.encode(users[:2], torch.tensor([[3], [3]]))[1]
    assert not torch.allclose(item_e[0], item_e[1])  # the attention makes v_i depend on the user
