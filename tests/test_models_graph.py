"""Graph collaborative filtering: the adjacency, propagation in any precision, evaluation that propagates once,
NCL's schedule and clustering, augmentations, and exact resume across an E-step."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
import torch

from conftest import tiny_config
from recforge import create_dataset, data_preparation, get_model_class, init_seed
from recforge.errors import TrainingInterrupted
from recforge.models.clustering import faiss_available, kmeans, torch_kmeans
from recforge.models.graph import normalized_adjacency
from recforge.models.sparse import propagate, sparse_pair, transpose_order, with_values
from recforge.registry import get_trainer
from recforge.trainer import Callback, NCLTrainer, Trainer
from test_trainer_resume import InterruptAt, assert_same, summary


def dense_reference(users, items, n_users, n_items, weights=None):
    """D^-1/2 A D^-1/2 computed densely, entry by entry."""
    n = n_users + n_items
    a = np.zeros((n, n))
    for k, (u, i) in enumerate(zip(users, items, strict=True)):
        w = 1.0 if weights is None else weights[k]
        a[u, n_users + i] += w
        a[n_users + i, u] += w
    degree = a.sum(axis=1) + 1e-7
    return a / np.sqrt(degree)[:, None] / np.sqrt(degree)[None, :]


def test_adjacency_equals_a_dense_reference():
    users, items = np.array([1, 1, 2, 3, 3, 3]), np.array([1, 2, 2, 1, 3, 3])  # (3, 3) twice
    adjacency = normalized_adjacency(users, items, 4, 4)
    assert adjacency.layout == torch.sparse_csr and adjacency.dtype == torch.float32
    np.testing.assert_allclose(adjacency.to_dense().numpy(), dense_reference(users, items, 4, 4), rtol=1e-6)
    assert adjacency.to_dense()[3, 4 + 3] == pytest.approx(2 / np.sqrt(3 * 2))  # a repeated pair weighs 2
    distinct = normalized_adjacency(np.array([1, 1, 2, 3, 3]), np.array([1, 2, 2, 1, 3]), 4, 4)
    assert torch.equal(distinct.to_dense(), distinct.to_dense().T) and distinct.to_dense()[3, 7] == pytest.approx(
        1 / np.sqrt(2)
    )


def test_propagation_gradients_match_dense_autograd():
    torch.manual_seed(0)
    users, items = np.array([1, 1, 2, 3, 3, 2]), np.array([1, 2, 2, 1, 3, 3])
    adjacency = normalized_adjacency(users, items, 4, 4)
    x = torch.randn(8, 3, requires_grad=True)
    weights = torch.randn(8, 3)
    (propagate(adjacency, propagate(adjacency, x)) * weights).sum().backward()
    dense = adjacency.to_dense()
    reference = x.detach().clone().requires_grad_(True)
    ((dense @ (dense @ reference)) * weights).sum().backward()
    assert torch.allclose(x.grad, reference.grad, atol=1e-6)
    # A matrix that is no longer symmetric (NGCF's node dropout) takes its transpose for the gradient.
    values = adjacency.values() * torch.tensor([1.0, 0.0] * (len(adjacency.values()) // 2))
    dropped = with_values(adjacency, values)
    transposed = with_values(adjacency, values[transpose_order(adjacency)])
    assert torch.equal(transposed.to_dense(), dropped.to_dense().T)
    x.grad = None
    (propagate(dropped, x, transposed) * weights).sum().backward()
    assert torch.allclose(x.grad, dropped.to_dense().T @ weights, atol=1e-6)


def test_sparse_pair_is_a_matrix_and_its_transpose():
    rows, cols, values = np.array([2, 0, 1, 0]), np.array([1, 3, 0, 0]), np.array([1.0, 2.0, 3.0, 4.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's "CSR support is in beta" warning is silenced
        pair = sparse_pair(rows, cols, values, (3, 4))
    dense = torch.zeros(3, 4)
    dense[rows, cols] = torch.tensor(values, dtype=torch.float32)
    assert torch.equal(pair.matrix.to_dense(), dense) and torch.equal(pair.transposed.to_dense(), dense.T)
    assert pair.matrix.values().dtype == torch.float32 and pair.matrix.col_indices().dtype == torch.int32
    assert torch.equal(pair.matrix.values()[transpose_order(pair.matrix)], pair.transposed.values())
    x, weights = torch.randn(4, 2, requires_grad=True), torch.randn(3, 2)
    (pair.with_values(2 * pair.matrix.values()).propagate(x) * weights).sum().backward()
    assert torch.allclose(x.grad, 2 * dense.T @ weights)


def test_propagation_under_bf16_autocast():
    adjacency = normalized_adjacency(np.array([1, 2]), np.array([1, 1]), 3, 2)
    embedding, linear = torch.nn.Embedding(5, 4), torch.nn.Linear(4, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        hidden = linear(embedding.weight)
        assert hidden.dtype == torch.bfloat16
        out = propagate(adjacency, hidden)
    out.sum().backward()
    assert out.dtype == torch.float32 and embedding.weight.grad is not None


def graph_setup(tiny_path, model, **overrides):
    values = {"epochs": 3, "learning_rate": 0.05, "train_batch_size": 4, "eval_args": {"order": "RO"}, **overrides}
    config = tiny_config(tiny_path, model, checkpoint_dir=str(tiny_path / "saved"), **values)
    init_seed(config["seed"])
    train, valid, test = data_preparation(config, create_dataset(config))
    init_seed(config["seed"])
    return config, config.model_class(config, train.dataset), train, valid, test


@pytest.mark.parametrize("model", ["LightGCN", "NGCF", "SGL", "SimGCL", "NCL"])
def test_evaluation_propagates_once_per_evaluation(tiny_path, model):
    config, net, train, valid, test = graph_setup(tiny_path, model, eval_batch_size=1, num_clusters=3)
    trainer = get_trainer(type(net))(config, net)
    trainer.fit(train, valid, verbose=False, saved=False)
    calls = []
    original = net.propagated
    net.propagated = lambda: calls.append(1) or original()
    assert len(test) == 4  # one user per batch
    first = trainer.evaluate(test)
    assert len(calls) == 1
    assert trainer.evaluate(test) == first and len(calls) == 2  # a new evaluation propagates again


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("model", ["LightGCN", "NGCF", "SGL", "SimGCL", "NCL"])
def test_graph_models_train_in_both_precisions(tiny_path, model, precision):
    config, net, train, valid, test = graph_setup(tiny_path, model, precision=precision, num_clusters=3)
    trainer = get_trainer(type(net))(config, net)
    trainer.fit(train, valid, verbose=False, saved=False)
    assert all(np.isfinite(v) for v in trainer.train_loss_dict.values())
    assert trainer.evaluate(test)["recall@3"] >= 0


def test_ncl_schedule_e_steps_and_warm_up(tiny_path):
    config, net, train, valid, _ = graph_setup(tiny_path, "NCL", epochs=6, m_step=2, warm_up_step=3, num_clusters=3)
    trainer = get_trainer(type(net))(config, net)
    assert type(trainer) is NCLTrainer
    e_steps, parts = [], []
    original = net.e_step
    net.e_step = lambda seed=None: e_steps.append((trainer.start_epoch, seed)) or original(seed)

    class RecordParts(Callback):
        def on_train_end(self, trainer, epoch, loss):
            parts.append(trainer.last_losses["loss"])

    trainer.callbacks.append(RecordParts())
    trainer.fit(train, valid, verbose=False, saved=False)
    assert [epoch for epoch, _ in e_steps] == [0, 2, 4]  # every m_step epochs from epoch 0
    assert [seed for _, seed in e_steps] == [2020, 2022, 2024]  # seed + epoch
    assert [p[2] == 0.0 for p in parts] == [True, True, True, False, False, False]  # warm-up: no prototypes
    assert all(p[0] > 0 and p[1] > 0 for p in parts)


def test_num_clusters_larger_than_the_ids_is_clamped(tiny_path, caplog):
    with caplog.at_level(logging.WARNING, logger="recforge"):
        _, net, _, _, _ = graph_setup(tiny_path, "NCL", num_clusters=1000)
    assert "num_clusters 1000 exceeds the 5 user / 7 item ids; clustering users into 5 and items into 7" in caplog.text
    net.e_step()
    assert net.user_centroids.shape == (5, 64) and net.item_centroids.shape == (7, 64)
    assert torch.allclose(net.user_centroids.norm(dim=1), torch.ones(5))  # normalised as in RecBole


def test_torch_kmeans_is_deterministic_and_finds_separated_clusters():
    generator = torch.Generator().manual_seed(0)
    centres = torch.tensor([[5.0, 0.0], [-5.0, 0.0], [0.0, 5.0]])
    labels = torch.arange(3).repeat_interleave(20)
    points = centres[labels] + 0.3 * torch.randn(60, 2, generator=generator)
    first = torch_kmeans(points, 3, seed=1)
    again = torch_kmeans(points, 3, seed=1)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    # The same partition as the true labels, up to renaming.
    pairs = {(int(a), int(b)) for a, b in zip(first[1], labels, strict=True)}
    assert len(pairs) == 3
    assert kmeans(points, 3, seed=1, backend="torch")[1].tolist() == first[1].tolist()


@pytest.mark.skipif(not faiss_available(), reason="faiss-cpu is not installed")
def test_faiss_kmeans_agrees_on_separated_clusters():
    generator = torch.Generator().manual_seed(0)
    centres = torch.tensor([[5.0, 0.0], [-5.0, 0.0], [0.0, 5.0]])
    labels = torch.arange(3).repeat_interleave(100)
    points = centres[labels] + 0.3 * torch.randn(300, 2, generator=generator)
    centroids, assignment = kmeans(points, 3, seed=7, backend="faiss")
    assert len({(int(a), int(b)) for a, b in zip(assignment, labels, strict=True)}) == 3
    assert torch.equal(kmeans(points, 3, seed=7, backend="faiss")[1], assignment)


def test_sgl_draws_new_views_every_epoch(tiny_path):
    for view_type in ("ED", "ND", "RW"):
        config, net, train, valid, _ = graph_setup(tiny_path, "SGL", type=view_type, drop_ratio=0.3, epochs=2)
        drawn = []

        def record(epoch, net=net, original=net.on_epoch_start, drawn=drawn):
            original(epoch)
            drawn.append([view[0].to_dense() for view in net.views])

        net.on_epoch_start = record
        trainer = Trainer(config, net)  # the model's own epoch hook runs under any trainer
        trainer.fit(train, valid, verbose=False, saved=False)
        assert len(drawn) == 2 and len(net.views[0]) == (3 if view_type == "RW" else 1)
        assert not torch.equal(drawn[0][0], drawn[0][1])  # two different views
        assert not torch.equal(drawn[0][0], drawn[1][0])  # new views next epoch
        full_edges = int((net.adjacency.to_dense() > 0).sum())
        assert int((drawn[0][0] > 0).sum()) < full_edges


def test_ngcf_dropout_only_in_training(tiny_path):
    config, net, train, valid, test = graph_setup(tiny_path, "NGCF", node_dropout=0.5, message_dropout=0.5)
    trainer = Trainer(config, net)
    trainer.fit(train, valid, verbose=False, saved=False)
    assert trainer.evaluate(test) == trainer.evaluate(test)  # no dropout when scoring
    net.train()
    adjacency, transposed = net._graph()
    kept = adjacency.values() != 0
    assert 0 < int(kept.sum()) < len(kept) and torch.equal(transposed.to_dense(), adjacency.to_dense().T)


def test_simgcl_noise_has_length_eps_per_node(tiny_path):
    _, net, _, _, _ = graph_setup(tiny_path, "SimGCL", eps=0.1, n_layers=1)
    torch.manual_seed(3)
    noisy = net.encode(noisy=True)
    clean = net.encode(noisy=False)
    lengths = (noisy - clean).norm(dim=1)
    connected = clean.abs().sum(dim=1) > 0  # the padding ids have no edges: sign(0) adds no noise
    assert int((~connected).sum()) == 2 and torch.all(lengths[~connected] == 0)
    assert torch.allclose(lengths[connected], torch.full_like(lengths[connected], 0.1), atol=1e-5)
    assert not torch.equal(net.encode(noisy=True), noisy)  # fresh noise every call


@pytest.mark.slow
@pytest.mark.parametrize("model", ["NCL", "SGL", "NGCF", "SimGCL"])
def test_resume_is_exact_across_epoch_hooks(tiny_path, model):
    """NCL's E-step (every 2 epochs) and SGL's views draw at epoch starts; a run interrupted after epoch 2 and
    resumed equals an uninterrupted one bit for bit."""
    own = {key.name for key in get_model_class(model).hyper_parameters}
    extra = {"num_clusters": 3, "m_step": 2, "warm_up_step": 1, "node_dropout": 0.2}
    overrides = {"epochs": 5, **{k: v for k, v in extra.items() if k in own}}

    def build(run, seed):
        config, net, train, valid, test = graph_setup(tiny_path, model, **overrides)
        init_seed(seed)
        return get_trainer(type(net))(config, net, run_dir=tiny_path / run), train, valid, test

    straight, train, valid, test = build("straight", 2020)
    straight.fit(train, valid, verbose=False)
    expected = summary(straight, test)
    first, train, valid, _ = build("stopped", 2020)
    first.callbacks.append(InterruptAt(2))
    with pytest.raises(TrainingInterrupted):
        first.fit(train, valid, verbose=False)
    resumed, train, valid, test = build("stopped", 99)
    resumed.resume_checkpoint(tiny_path / "stopped" / "checkpoints" / "last.pth")
    resumed.fit(train, valid, verbose=False)
    assert_same(summary(resumed, test), expected)


def test_fused_log_sum_exp_matches_autograd():
    from recforge.models.losses import log_sum_exp_of_products

    torch.manual_seed(0)
    anchors = torch.randn(7, 5, requires_grad=True)
    candidates = torch.randn(11, 5, requires_grad=True)
    weights = torch.rand(7)
    (log_sum_exp_of_products(anchors, candidates, bound=10) * weights).sum().backward()
    fused = anchors.grad.clone(), candidates.grad.clone()
    anchors.grad = candidates.grad = None
    (torch.logsumexp(anchors @ candidates.T, dim=1) * weights).sum().backward()
    assert torch.allclose(fused[0], anchors.grad, atol=1e-5) and torch.allclose(fused[1], candidates.grad, atol=1e-5)


def _recbole_info_nce(anchors, positives, candidates, tau):
    """RecBole's contrastive term, row by row over the batch (repeated rows included): -sum log(e^pos / sum e^all)."""
    a, p, c = (torch.nn.functional.normalize(t, dim=1) for t in (anchors, positives, candidates))
    positive = torch.exp((a * p).sum(dim=1) / tau)
    total = torch.exp(a @ c.T / tau).sum(dim=1)
    return -torch.log(positive / total).sum()


def test_ncl_losses_equal_recboles_formulas_over_the_batch_rows(tiny_path):
    config, net, train, _, _ = graph_setup(tiny_path, "NCL", train_batch_size=16, num_clusters=3)
    net.e_step()
    batch = next(iter(train))
    user, item = batch[net.USER_ID], batch[net.ITEM_ID]
    assert len(torch.unique(user)) < len(user)  # repeated users: weighted once by their count
    _, structure, prototype = net.calculate_loss(batch)
    with torch.no_grad():
        layers = net.layers(max(net.n_layers, 2 * net.hyper_layers))
        center, context = layers[0], layers[2 * net.hyper_layers]
        users_0, items_0 = net.split(center)
        users_c, items_c = net.split(context)
        tau = net.ssl_temp
        expected_structure = net.ssl_reg * (
            _recbole_info_nce(users_c[user], users_0[user], users_0, tau)
            + net.alpha * _recbole_info_nce(items_c[item], items_0[item], items_0, tau)
        )
        expected_prototype = net.proto_reg * (
            _recbole_info_nce(users_0[user], net.user_centroids[net.user_2cluster[user]], net.user_centroids, tau)
            + _recbole_info_nce(items_0[item], net.item_centroids[net.item_2cluster[item]], net.item_centroids, tau)
        )
    # ssl_reg and proto_reg are 1e-7 and 8e-8: compared relative to the values, without an absolute tolerance
    torch.testing.assert_close(structure.detach() / net.ssl_reg, expected_structure / net.ssl_reg, rtol=1e-4, atol=0)
    torch.testing.assert_close(
        prototype.detach() / net.proto_reg, expected_prototype / net.proto_reg, rtol=1e-4, atol=0
    )


def test_sgl_contrastive_term_equals_recboles_formula_over_the_batch_rows(tiny_path):
    config, net, train, _, _ = graph_setup(tiny_path, "SGL", train_batch_size=16, drop_ratio=0.3)
    net.on_epoch_start(0)
    batch = next(iter(train))
    user, item = batch[net.USER_ID], batch[net.ITEM_ID]
    with_contrast = net.calculate_loss(batch).detach()
    weight, net.ssl_weight = net.ssl_weight, 0.0
    without = net.calculate_loss(batch).detach()
    with torch.no_grad():
        users_1, items_1 = net.view_embeddings(net.views[0])
        users_2, items_2 = net.view_embeddings(net.views[1])
        expected = _recbole_info_nce(users_1[user], users_2[user], users_2, net.ssl_tau) + _recbole_info_nce(
            items_1[item], items_2[item], items_2, net.ssl_tau
        )
    torch.testing.assert_close((with_contrast - without) / weight, expected, rtol=1e-4, atol=0)
