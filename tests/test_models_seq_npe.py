"""NPE against RecBole 1.2.1's equations, written out from the model's own weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import recforge.models.sequential.npe  # noqa: F401  (registers NPE)
from recforge.registry import get_model_class
from recforge.utils import init_seed
from sequential_data import cycle_config, cycle_loaders, first_batch, write_cycle


@pytest.fixture(scope="module")
def cycle_root(tmp_path_factory):
    return write_cycle(tmp_path_factory.mktemp("cycle"))


def built(root, **overrides):
    config = cycle_config(root, "NPE", **overrides)
    train, _, _ = cycle_loaders(config)
    init_seed(0)
    return get_model_class("NPE")(config, train.dataset).eval(), first_batch(train)


def recbole_representation(model, batch) -> torch.Tensor:
    """RecBole's NPE.forward without dropout, row by row: relu(U[u]) + relu(sum of E over all L positions), item
    0's row added once per padding position (E has no padding row)."""
    table, users = model.item_embedding.weight, model.user_embedding.weight
    rows = [
        torch.relu(users[user]) + torch.relu(sum(table[i] for i in items))
        for items, user in zip(batch["item_id_list"].tolist(), batch["user_id"].tolist(), strict=True)
    ]
    return torch.stack(rows)


def test_full_sort_predict_and_ce_loss_are_recboles(cycle_root):
    model, batch = built(cycle_root)
    assert (batch["item_length"] < 8).any()
    with torch.no_grad():
        model.item_embedding.weight[0] += 0.5  # the padding vector counts (it is trained in RecBole)
        expected = recbole_representation(model, batch) @ torch.relu(model.item_embedding.weight).T
        assert torch.allclose(model.full_sort_predict(batch), expected, atol=1e-5)
        rows = torch.arange(len(expected))
        assert torch.allclose(model.predict(batch), expected[rows, batch["item_id"]], atol=1e-5)
        ce = nn.functional.cross_entropy(expected, batch["item_id"])
        assert model.calculate_loss(batch).item() == pytest.approx(ce.item(), rel=1e-5)


def test_bpr_loss_is_recboles(cycle_root):
    model, batch = built(cycle_root, loss_type="BPR", train_neg_sample_args={"distribution": "uniform"})
    with torch.no_grad():
        h = recbole_representation(model, batch)
        table = torch.relu(model.item_embedding.weight)
        pos, neg = (h * table[batch["item_id"]]).sum(-1), (h * table[batch["neg_item_id"]]).sum(-1)
        expected = -torch.log(1e-10 + torch.sigmoid(pos - neg)).mean()
        assert model.calculate_loss(batch).item() == pytest.approx(expected.item(), rel=1e-5)


def test_hand_computed_scores(cycle_root):
    """d = 2, one user, history [1, 2, 0]: h = relu(U) + relu(E1 + E2 + E0)."""
    model, _ = built(cycle_root, embedding_size=2)
    with torch.no_grad():
        model.user_embedding.weight[1] = torch.tensor([1.0, -2.0])
        model.item_embedding.weight[:3] = torch.tensor([[0.5, 0.5], [1.0, -1.0], [-2.0, 3.0]])
    batch = {"item_id_list": torch.tensor([[1, 2, 0]]), "item_length": torch.tensor([2]), "user_id": torch.tensor([1])}
    # h = [1, 0] + relu([-0.5, 2.5]) = [1, 2.5]; relu(E) rows: [0.5, 0.5], [1, 0], [0, 3]
    scores = model.full_sort_predict(batch)[0, :3]
    assert scores.tolist() == pytest.approx([1.75, 1.0, 7.5])


def test_initialisation_follows_recboles_order(cycle_root):
    model, _ = built(cycle_root)
    init_seed(0)
    users = nn.Embedding(model.n_users, 64)
    items = nn.Embedding(model.n_items, 64)
    sequence_items = nn.Embedding(model.n_items, 64, padding_idx=0)
    for table in (users, items, sequence_items):
        nn.init.xavier_normal_(table.weight.data)
    assert torch.equal(model.user_embedding.weight, users.weight)
    assert torch.equal(model.item_embedding.weight, items.weight)
    assert torch.equal(model.embedding_seq_item.weight, sequence_items.weight)  # unused, kept as RecBole
