"""KGAT: the contract, the collaborative knowledge graph, RecBole's initial A, the attention against a dense per-head
softmax, RecBole's losses recomputed row by row, bf16, message dropout, the last-layer shortcut and the evaluation
cache."""

from collections import defaultdict

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from recforge import create_dataset, data_preparation
from recforge.data.interaction import Interaction
from recforge.registry import get_model_class, get_trainer
from test_models import blocks_config, blocks_path, check_contract  # noqa: F401

SETTINGS = {"learning_rate": 0.02, "epochs": 3, "train_batch_size": 32}


def build(path, perturb=True, **settings):
    config = blocks_config(path, "KGAT", **settings)
    train, valid, _ = data_preparation(config, create_dataset(config))
    model = get_model_class("KGAT")(config, train.dataset)
    if perturb:  # away from the initialisation, so that every term matters
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(0.3 * torch.randn(parameter.shape, generator=generator))
    return config, train, valid, model


def add_multi_edges(path):
    """Two relations between e_x0 and genre_x, and the triple (e_x1, similar, e_x2) twice."""
    kg = path / "blocks" / "blocks.kg"
    kg.write_text(kg.read_text() + "e_x0\ttag\tgenre_x\ne_x1\tsimilar\te_x2\n")


# -- the graph and RecBole's formulas, written edge by edge and row by row ------------------------------------------
def ckg_edges(model, dataset):
    """The CKG's edges (head node, relation, tail node), as RecBole's ckg_graph: user -> item and item -> user per
    interaction with [UI-Relation], then the triples, entities shifted by n_users."""
    ui = dataset.relation_num - 1
    edges = []
    for u, i in zip(dataset.inter_feat["user_id"].tolist(), dataset.inter_feat["item_id"].tolist(), strict=True):
        edges += [(u, ui, model.n_users + i), (model.n_users + i, ui, u)]
    for h, r, t in zip(
        dataset.head_entities.tolist(), dataset.relations.tolist(), dataset.tail_entities.tolist(), strict=True
    ):
        edges.append((model.n_users + h, r, model.n_users + t))
    return edges


def dense(model):
    crow, col = model.adj_crow.long(), model.adj_col.long()
    shape = (model.n_nodes, model.n_nodes)
    return torch.sparse_csr_tensor(crow, col, model.attention, shape, check_invariants=True).to_dense().double()


def reference_initial_A(model, edges):
    """RecBole's init_graph: for each relation 1..R-1, its edges' matrix row-normalised (D^-1 A_r); the sum."""
    a = torch.zeros(model.n_nodes, model.n_nodes, dtype=torch.float64)
    for relation in range(1, model.n_relations):
        own = [(h, t) for h, r, t in edges if r == relation]
        degree = defaultdict(int)
        for h, _ in own:
            degree[h] += 1
        for h, t in own:
            a[h, t] += 1.0 / degree[h]
    return a


def reference_attention(model, edges):
    """Each edge's pi(h, r, t) = (W_r e_t)^T tanh(W_r e_h + e_r), a softmax over each head's out-edges, summed into a
    dense [N, N] A."""
    ego = model.ego_embeddings().detach().double()
    w = model.trans_w.weight.detach().double().view(-1, model.embedding_size, model.kg_embedding_size)
    r_e = model.relation_embedding.weight.detach().double()
    out = defaultdict(list)
    for h, r, t in edges:
        out[h].append((t, float((ego[t] @ w[r]) @ torch.tanh(ego[h] @ w[r] + r_e[r]))))
    a = torch.zeros(model.n_nodes, model.n_nodes, dtype=torch.float64)
    for h, row in out.items():
        weights = torch.softmax(torch.tensor([s for _, s in row], dtype=torch.float64), dim=0)
        for (t, _), weight in zip(row, weights, strict=True):
            a[h, t] += weight
    return a


def reference_embeddings(model, a):
    """RecBole's forward without dropout, in float64, with a dense A."""
    ego = model.ego_embeddings().detach().double()
    parts = [ego]
    for layer in model.aggregator_layers:
        side = a @ ego

        def linear(module, x):
            return x @ module.weight.detach().double().T + module.bias.detach().double()

        if model.aggregator_type == "gcn":
            ego = F.leaky_relu(linear(layer.W, ego + side))
        elif model.aggregator_type == "graphsage":
            ego = F.leaky_relu(linear(layer.W, torch.cat([ego, side], dim=1)))
        else:
            ego = F.leaky_relu(linear(layer.W1, ego + side)) + F.leaky_relu(linear(layer.W2, ego * side))
        parts.append(F.normalize(ego, p=2, dim=1))
    return torch.cat(parts, dim=1)


def reference_loss(model, final, batch):
    """BPRLoss (mean of -log(1e-10 + sigmoid(pos - neg))) + reg_weight x EmbLoss (sum of the L2 norms / B)."""
    rows, us, ps, ns = [], [], [], []
    for u, i, j in zip(
        batch["user_id"].tolist(), batch["item_id"].tolist(), batch["neg_item_id"].tolist(), strict=True
    ):
        e_u, e_i, e_j = final[u], final[model.n_users + i], final[model.n_users + j]
        rows.append(-torch.log(1e-10 + torch.sigmoid((e_u * e_i).sum() - (e_u * e_j).sum())))
        us.append(e_u), ps.append(e_i), ns.append(e_j)
    regular = sum(torch.stack(x).norm() for x in (us, ps, ns)) / len(rows)
    return torch.stack(rows).mean() + model.reg_weight * regular


def reference_kg_loss(model, batch):
    """softplus(||W_r h + r - W_r t||^2 - ||W_r h + r - W_r t'||^2), mean, + reg_weight x EmbLoss."""
    entity = model.entity_embedding.weight.detach().double()
    w = model.trans_w.weight.detach().double().view(-1, model.embedding_size, model.kg_embedding_size)
    r_e = model.relation_embedding.weight.detach().double()
    rows, parts = [], [[], [], [], []]
    for h, r, t, nt in zip(
        *(batch[k].tolist() for k in ("head_id", "relation_id", "tail_id", "neg_tail_id")), strict=True
    ):
        h_e, t_e, n_e = entity[h] @ w[r], entity[t] @ w[r], entity[nt] @ w[r]
        rows.append(F.softplus(((h_e + r_e[r] - t_e) ** 2).sum() - ((h_e + r_e[r] - n_e) ** 2).sum()))
        for part, x in zip(parts, (h_e, r_e[r], t_e, n_e), strict=True):
            part.append(x)
    regular = sum(torch.stack(x).norm() for x in parts) / len(rows)
    return torch.stack(rows).mean() + model.reg_weight * regular


BATCH = {
    "user_id": torch.tensor([1, 4, 9, 20, 13, 4]),
    "item_id": torch.tensor([2, 5, 11, 19, 7, 5]),
    "neg_item_id": torch.tensor([7, 1, 3, 12, 17, 18]),
}
KG_BATCH = {
    "head_id": torch.tensor([1, 3, 20, 8, 17, 3]),
    "relation_id": torch.tensor([1, 2, 3, 1, 3, 2]),
    "tail_id": torch.tensor([21, 4, 24, 22, 25, 4]),
    "neg_tail_id": torch.tensor([9, 25, 2, 4, 21, 6]),
}


# -- tests ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kg_reverse_r", [False, True])
def test_the_graph_and_the_initial_A_are_recboles(blocks_path, kg_reverse_r):  # noqa: F811
    add_multi_edges(blocks_path)
    _, train, _, model = build(blocks_path, perturb=False, kg_reverse_r=kg_reverse_r)
    dataset = train.dataset
    edges = ckg_edges(model, dataset)
    assert model.n_nodes == model.n_users + model.n_entities
    # The pattern: one entry per distinct (head, tail) of the edges, UI edges both ways, reversed triples when asked.
    pattern = dense(model) != 0
    expected = torch.zeros_like(pattern)
    for h, _, t in edges:
        expected[h, t] = True
    assert torch.equal(pattern, expected)
    triples = len(dataset.head_entities)
    assert triples == (2 if kg_reverse_r else 1) * 62 and len(model.triple_head) == len(set(edges))
    ckg = dataset.ckg_graph(form="coo", value_field="relation_id")
    assert sorted(zip(ckg.row.tolist(), ckg.data.tolist(), ckg.col.tolist(), strict=True)) == sorted(edges)
    # The transpose is A's transpose.
    transposed = torch.sparse_csr_tensor(
        model.adj_t_crow.long(),
        model.adj_t_col.long(),
        model.attention[model.adj_t_order],
        pattern.shape,
        check_invariants=True,
    ).to_dense()
    torch.testing.assert_close(transposed, dense(model).float().T, rtol=0, atol=0)
    torch.testing.assert_close(dense(model), reference_initial_A(model, edges), rtol=1e-6, atol=0)


def test_update_attentive_A_is_a_per_head_softmax(blocks_path):  # noqa: F811
    add_multi_edges(blocks_path)
    _, train, _, model = build(blocks_path)
    before = model.attention.clone()
    model.update_attentive_A()
    edges = ckg_edges(model, train.dataset)
    a = dense(model)
    torch.testing.assert_close(a, reference_attention(model, edges), rtol=1e-5, atol=1e-7)
    assert not torch.equal(model.attention, before)
    # Rows sum to 1 over the existing edges (0 for nodes without out-edges); the pattern is unchanged.
    heads = torch.tensor(sorted({h for h, _, _ in edges}))
    torch.testing.assert_close(a.sum(1)[heads], torch.ones(len(heads), dtype=torch.float64), rtol=1e-6, atol=0)
    assert a.sum() == pytest.approx(len(heads), rel=1e-6)
    assert (a > 0).sum() == len({(h, t) for h, _, t in edges})
    # The pair linked by two relations gets the sum of both edges' weights (RecBole would take one softmax entry of
    # the summed scores).
    e_x0 = model.n_users + int(np.flatnonzero(train.dataset.field2id_token["entity_id"] == "e_x0")[0])
    genre = model.n_users + int(np.flatnonzero(train.dataset.field2id_token["entity_id"] == "genre_x")[0])
    assert sum(1 for h, _, t in edges if (h, t) == (e_x0, genre)) == 2
    ego = model.ego_embeddings().detach().double()
    w = model.trans_w.weight.detach().double().view(-1, model.embedding_size, model.kg_embedding_size)
    r_e = model.relation_embedding.weight.detach().double()
    scores = {(r, t): float((ego[t] @ w[r]) @ torch.tanh(ego[e_x0] @ w[r] + r_e[r])) for h, r, t in edges if h == e_x0}
    total = sum(np.exp(s) for s in scores.values())
    expected = sum(np.exp(s) for (_, t), s in scores.items() if t == genre) / total
    assert float(a[e_x0, genre]) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(("aggregator_type", "layers"), [("bi", [64]), ("gcn", [16, 8]), ("graphsage", [16, 8])])
def test_losses_equal_recboles_formulas(blocks_path, aggregator_type, layers):  # noqa: F811
    _, train, _, model = build(blocks_path, aggregator_type=aggregator_type, layers=layers, reg_weight=0.01)
    edges = ckg_edges(model, train.dataset)
    model.eval()  # no message dropout
    for refresh in (False, True):  # the initial A, then the attentive one
        if refresh:
            model.update_attentive_A()
        a = reference_initial_A(model, edges) if not refresh else reference_attention(model, edges)
        with torch.no_grad():
            final = reference_embeddings(model, a)
            expected = reference_loss(model, final, BATCH)
            got = model.calculate_loss(Interaction(BATCH))
        torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=0)
        users = torch.arange(model.n_users)
        scores = model.full_sort_predict(Interaction({"user_id": users}))
        expected_scores = final[: model.n_users] @ final[model.n_users : model.n_users + model.n_items].T
        torch.testing.assert_close(scores.double(), expected_scores, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        got = model.calculate_kg_loss(Interaction(KG_BATCH))
    torch.testing.assert_close(got.double(), reference_kg_loss(model, KG_BATCH), rtol=1e-5, atol=0)


@pytest.mark.parametrize("layers", [[16, 8, 4], []])
def test_last_layer_on_the_batch_rows_only_equals_the_full_forward(blocks_path, layers):  # noqa: F811
    _, _, _, model = build(blocks_path, layers=layers)
    model.eval()
    model.update_attentive_A()
    nodes = torch.tensor([0, 3, 3, 25, 40, 21, 1])
    with torch.no_grad():
        torch.testing.assert_close(model.embeddings(nodes), model.embeddings()[nodes], rtol=1e-6, atol=1e-6)
        assert model.embeddings().shape == (model.n_nodes, 64 + sum(layers))
        if not layers:  # no aggregation: the layer-0 embeddings
            torch.testing.assert_close(model.embeddings(), model.ego_embeddings())


def test_message_dropout_in_training_only(blocks_path):  # noqa: F811
    _, _, _, model = build(blocks_path, mess_dropout=0.5)
    nodes = torch.arange(model.n_nodes)
    model.train()
    first, second = model.embeddings(nodes), model.embeddings(nodes)
    assert not torch.allclose(first[:, 64:], second[:, 64:])
    torch.testing.assert_close(first[:, :64], second[:, :64])  # layer 0 is never dropped
    scores = model.full_sort_predict(Interaction({"user_id": torch.arange(1, 21)}))  # evaluation ignores the mode
    model.eval()
    torch.testing.assert_close(model.embeddings(nodes), model.embeddings(nodes))
    torch.testing.assert_close(scores, model.full_sort_predict(Interaction({"user_id": torch.arange(1, 21)})))


def test_a_node_repeated_in_a_batch_gets_one_dropout_draw(blocks_path):  # noqa: F811
    _, _, _, model = build(blocks_path, mess_dropout=0.5)
    model.train()
    seen, original = [], model.embeddings
    model.embeddings = lambda nodes=None: seen.append(nodes) or original(nodes)
    loss = model.calculate_loss(Interaction(BATCH))  # user 4 and item 5 twice, item 7 positive and negative
    assert torch.isfinite(loss)
    (nodes,) = seen
    assert (
        len(nodes)
        == len(torch.unique(nodes))
        == len(set(BATCH["user_id"].tolist()))
        + len(set(BATCH["item_id"].tolist()) | set(BATCH["neg_item_id"].tolist()))
    )


def test_evaluation_cache_follows_the_attention_and_the_weights(blocks_path):  # noqa: F811
    _, train, _, model = build(blocks_path)
    model.eval()
    users = Interaction({"user_id": torch.arange(1, 21)})
    first = model.full_sort_predict(users)
    assert model.full_sort_predict(users) is not first and torch.equal(model.full_sort_predict(users), first)
    model.update_attentive_A()  # a new A: new embeddings
    refreshed = model.full_sort_predict(users)
    assert not torch.allclose(refreshed, first)
    fresh = get_model_class("KGAT")(model.config, train.dataset)
    assert "attention" in model.state_dict()
    fresh.load_state_dict(model.state_dict())  # the attention travels with the weights
    torch.testing.assert_close(fresh.eval().full_sort_predict(users), refreshed)


def test_trainer_refreshes_the_attention_every_epoch(blocks_path):  # noqa: F811
    config, train, valid, model = build(blocks_path, perturb=False, epochs=2)
    assert model.trainer == "KGATTrainer"
    calls, original = [], model.update_attentive_A
    model.update_attentive_A = lambda: calls.append(torch.is_grad_enabled()) or original()
    initial = model.attention.clone()
    trainer = get_trainer(type(model))(config, model, run_dir=blocks_path / "run")
    trainer.fit(train, valid, verbose=False, saved=False)
    assert calls == [False, False]
    assert not torch.allclose(model.attention, initial)


def test_bf16_trains(blocks_path):  # noqa: F811
    config, train, valid, model = build(blocks_path, perturb=False, precision="bf16", epochs=2)
    trainer = get_trainer(type(model))(config, model, run_dir=blocks_path / "run")
    trainer.fit(train, valid, verbose=False, saved=False)
    assert len(trainer.train_loss_dict) == 2 and all(np.isfinite(v) for v in trainer.train_loss_dict.values())
    scores = model.full_sort_predict(Interaction({"user_id": torch.arange(1, 21)}))
    assert scores.dtype == torch.float32 and torch.isfinite(scores).all()
    assert model.attention.dtype == torch.float32 and torch.isfinite(model.attention).all()


def test_resume_restores_the_attention(blocks_path):  # noqa: F811
    from recforge import init_seed
    from recforge.errors import TrainingInterrupted
    from test_trainer_resume import InterruptAt

    def trainer_for(run, seed):
        init_seed(seed)
        config, train, valid, model = build(blocks_path, perturb=False, epochs=2, mess_dropout=0.3)
        return get_trainer(type(model))(config, model, run_dir=blocks_path / run), train, valid

    straight, train, valid = trainer_for("straight", 2020)
    straight.fit(train, valid, verbose=False)
    first, train, valid = trainer_for("interrupted", 2020)
    first.callbacks.append(InterruptAt(0))
    with pytest.raises(TrainingInterrupted) as info:
        first.fit(train, valid, verbose=False)
    resumed, train, valid = trainer_for("interrupted", 7)
    resumed.resume_checkpoint(info.value.checkpoint)
    assert torch.equal(resumed.model.attention, first.model.attention)  # A after epoch 0, not the initial A
    resumed.fit(train, valid, verbose=False)
    assert resumed.train_loss_dict == straight.train_loss_dict
    assert torch.equal(resumed.model.attention, straight.model.attention)
    for a, b in zip(resumed.model.parameters(), straight.model.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("layers", [[8], [16, 8]])
def test_gradients_equal_a_dense_forward(blocks_path, layers):  # noqa: F811
    """The sparse product's backward (through A's stored transpose: the CKG is not symmetric) gives the gradients of
    a dense float64 forward."""
    _, train, _, model = build(blocks_path, layers=layers, aggregator_type="bi")
    model.eval()  # no message dropout
    model.update_attentive_A()
    a = reference_attention(model, ckg_edges(model, train.dataset))
    params = dict(model.named_parameters())
    got = torch.autograd.grad(model.calculate_loss(Interaction(BATCH)), list(params.values()), allow_unused=True)

    ego = torch.cat([params["user_embedding.weight"], params["entity_embedding.weight"]]).double()
    parts = [ego]
    for index, _ in enumerate(model.aggregator_layers):
        side = a @ ego

        def linear(name, x, index=index):
            prefix = f"aggregator_layers.{index}.{name}"
            return x @ params[f"{prefix}.weight"].double().T + params[f"{prefix}.bias"].double()

        ego = F.leaky_relu(linear("W1", ego + side)) + F.leaky_relu(linear("W2", ego * side))
        parts.append(F.normalize(ego, p=2, dim=1))
    expected_loss = reference_loss(model, torch.cat(parts, dim=1), BATCH)
    want = torch.autograd.grad(expected_loss, list(params.values()), allow_unused=True)
    for name, g, w in zip(params, got, want, strict=True):
        if w is None:
            assert g is None or not g.any(), name
        else:
            assert float((g.double() - w).abs().max()) <= 1e-6 + 1e-4 * float(w.abs().max()), name
