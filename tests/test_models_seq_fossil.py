"""FOSSIL against RecBole 1.2.1's equations, written out row by row from the model's own weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import recforge.models.sequential.fossil  # noqa: F401  (registers FOSSIL)
from recforge.errors import ConfigError
from recforge.registry import get_model_class
from recforge.utils import init_seed
from sequential_data import cycle_config, cycle_loaders, first_batch, write_cycle


@pytest.fixture(scope="module")
def cycle_root(tmp_path_factory):
    return write_cycle(tmp_path_factory.mktemp("cycle"))


def built(root, **overrides):
    config = cycle_config(root, "FOSSIL", **overrides)
    train, _, _ = cycle_loaders(config)
    init_seed(0)
    model = get_model_class("FOSSIL")(config, train.dataset).eval()
    with torch.no_grad():  # lambda_ starts at zero: give it values so the test sees it
        model.lambda_.copy_(torch.linspace(-0.5, 0.7, model.order_len))
    return model, first_batch(train)


def recbole_representation(model, batch) -> torch.Tensor:
    """RecBole's FOSSIL.forward for each row: n^-alpha * sum of all L embeddings (padding rows included) plus
    sum_k (lambda_k + lambda_{u,k}) * E[s_{n-K+k}], zero where n-K+k < 0."""
    table, user_lambda = model.item_embedding.weight, model.user_lambda.weight
    order, rows = model.order_len, []
    columns = (batch["item_id_list"].tolist(), batch["item_length"].tolist(), batch["user_id"].tolist())
    for items, n, user in zip(*columns, strict=True):
        similarity = n ** (-model.alpha) * sum(table[i] for i in items)
        markov = torch.zeros(table.shape[1])
        for k in range(order):
            position = n - order + k
            if position >= 0:
                markov = markov + (model.lambda_[k] + user_lambda[user, k]) * table[items[position]]
        rows.append(similarity + markov)
    return torch.stack(rows)


def test_full_sort_predict_and_ce_loss_are_recboles(cycle_root):
    model, batch = built(cycle_root, reg_weight=0.01)
    assert (batch["item_length"] < model.order_len).any() and (batch["item_length"] == 8).any()
    assert model.item_embedding.weight[0].abs().sum() > 0  # xavier covers the padding row, as in RecBole
    with torch.no_grad():
        h = recbole_representation(model, batch)
        expected = h @ model.item_embedding.weight.T
        assert torch.allclose(model.full_sort_predict(batch), expected, atol=1e-5)
        assert torch.allclose(model.predict(batch), expected[torch.arange(len(h)), batch["item_id"]], atol=1e-5)
        reg = 0.01 * (
            model.user_lambda.weight[batch["user_id"]].norm() + model.item_embedding.weight[batch["item_id"]].norm()
        )
        ce = nn.functional.cross_entropy(expected, batch["item_id"]) + reg + 0.01 * h.norm()
        assert model.calculate_loss(batch).item() == pytest.approx(ce.item(), rel=1e-5)


def test_bpr_loss_is_recboles(cycle_root):
    model, batch = built(cycle_root, loss_type="BPR", train_neg_sample_args={"distribution": "uniform"})
    with torch.no_grad():
        h = recbole_representation(model, batch)
        table = model.item_embedding.weight
        pos, neg = (h * table[batch["item_id"]]).sum(-1), (h * table[batch["neg_item_id"]]).sum(-1)
        expected = -torch.log(1e-10 + torch.sigmoid(pos - neg)).mean()  # reg_weight 0 by default
        assert model.calculate_loss(batch).item() == pytest.approx(expected.item(), rel=1e-5)


def test_a_short_history_reads_zeros_before_its_first_item(cycle_root):
    model, _ = built(cycle_root, order_len=3)
    embedding = torch.arange(1.0, 13.0).view(1, 4, 3)  # [B=1, L=4, d=3]
    last = model.last_items_embedding(embedding, torch.tensor([2]))
    assert torch.equal(last[0], torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
    last = model.last_items_embedding(embedding, torch.tensor([4]))
    assert torch.equal(last[0], embedding[0, 1:])


def test_initialisation_follows_recboles_order(cycle_root):
    model, _ = built(cycle_root)
    init_seed(0)
    items = nn.Embedding(model.n_items, 64, padding_idx=0)
    users = nn.Embedding(model.n_users, 3)
    nn.init.xavier_normal_(items.weight.data)
    nn.init.xavier_normal_(users.weight.data)
    assert torch.equal(model.item_embedding.weight, items.weight)
    assert torch.equal(model.user_lambda.weight, users.weight)
    assert sorted(model.state_dict()) == ["item_embedding.weight", "lambda_", "user_lambda.weight"]


def test_order_len_longer_than_the_history_is_refused(cycle_root):
    with pytest.raises(ConfigError, match="order_len"):
        built(cycle_root, order_len=9)
