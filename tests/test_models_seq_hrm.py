"""HRM against RecBole 1.2.1's equations, written out row by row from the model's own weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import recforge.models.sequential.hrm  # noqa: F401  (registers HRM)
from recforge.errors import ConfigError
from recforge.registry import get_model_class
from recforge.utils import init_seed
from sequential_data import cycle_config, cycle_loaders, first_batch, write_cycle


@pytest.fixture(scope="module")
def cycle_root(tmp_path_factory):
    return write_cycle(tmp_path_factory.mktemp("cycle"))


def built(root, **overrides):
    config = cycle_config(root, "HRM", **overrides)
    train, _, _ = cycle_loaders(config)
    init_seed(0)
    return get_model_class("HRM")(config, train.dataset).eval(), first_batch(train)


def recbole_representation(model, batch) -> torch.Tensor:
    """RecBole's HRM.forward without dropout, row by row: the history right-aligned (padding first); layer 1 the
    max over the last high_order positions, or the sum over all positions / min(n, high_order); layer 2 the max
    or mean of the user's and layer 1's vectors."""
    table, users, order = model.item_embedding.weight, model.user_embedding.weight, model.high_order
    rows = []
    columns = (batch["item_id_list"].tolist(), batch["item_length"].tolist(), batch["user_id"].tolist())
    for items, n, user in zip(*columns, strict=True):
        aligned = [0] * (len(items) - n) + items[:n]
        embedded = table[aligned]
        if model.pooling_type_layer_1 == "max":
            pooled = embedded[-order:].max(dim=0).values
        else:
            pooled = embedded.sum(dim=0) / min(n, order)
        pair = torch.stack([users[user], pooled])
        rows.append(pair.max(dim=0).values if model.pooling_type_layer_2 == "max" else pair.mean(dim=0))
    return torch.stack(rows)


@pytest.mark.parametrize("layer_1", ["max", "average"])
@pytest.mark.parametrize("layer_2", ["max", "average"])
def test_full_sort_predict_and_ce_loss_are_recboles(cycle_root, layer_1, layer_2):
    model, batch = built(cycle_root, high_order=3, pooling_type_layer_1=layer_1, pooling_type_layer_2=layer_2)
    lengths = batch["item_length"].clone()
    assert (lengths < 3).any() and (lengths > 3).any()
    assert model.item_embedding.weight[0].abs().sum() > 0  # xavier covers the padding row, as in RecBole
    with torch.no_grad():
        expected = recbole_representation(model, batch) @ model.item_embedding.weight.T
        assert torch.allclose(model.full_sort_predict(batch), expected, atol=1e-5)
        assert torch.allclose(model.predict(batch), expected[torch.arange(len(lengths)), batch["item_id"]], atol=1e-5)
        ce = nn.functional.cross_entropy(expected, batch["item_id"])
        assert model.calculate_loss(batch).item() == pytest.approx(ce.item(), rel=1e-5)
    assert torch.equal(batch["item_length"], lengths)  # RecBole clamps the batch's lengths in place; recforge not


def test_bpr_loss_is_recboles(cycle_root):
    model, batch = built(cycle_root, loss_type="BPR", train_neg_sample_args={"distribution": "uniform"})
    with torch.no_grad():
        h = recbole_representation(model, batch)
        table = model.item_embedding.weight
        pos, neg = (h * table[batch["item_id"]]).sum(-1), (h * table[batch["neg_item_id"]]).sum(-1)
        expected = -torch.log(1e-10 + torch.sigmoid(pos - neg)).mean()
        assert model.calculate_loss(batch).item() == pytest.approx(expected.item(), rel=1e-5)


def test_right_alignment():
    items = torch.tensor([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8], [9, 0, 0, 0, 0]])
    aligned = get_model_class("HRM").inverse_seq_item(items, torch.tensor([3, 5, 1]))
    assert aligned.tolist() == [[0, 0, 1, 2, 3], [4, 5, 6, 7, 8], [0, 0, 0, 0, 9]]


def test_dropout_drops_the_user_vector_then_both_vectors(cycle_root):
    model, batch = built(cycle_root, dropout_prob=0.5, pooling_type_layer_2="average")
    model.train()
    init_seed(3)
    output = model.sequence_output(batch)
    init_seed(3)
    user = nn.functional.dropout(model.user_embedding(batch["user_id"]), 0.5)
    aligned = model.inverse_seq_item(batch["item_id_list"], batch["item_length"])
    pooled = model.item_embedding(aligned)[:, -2:].max(dim=1).values
    expected = nn.functional.dropout(torch.stack([user, pooled], dim=1), 0.5).mean(dim=1)
    assert torch.allclose(output, expected, atol=1e-6)


def test_initialisation_follows_recboles_order(cycle_root):
    model, _ = built(cycle_root)
    init_seed(0)
    items = nn.Embedding(model.n_items, 64, padding_idx=0)
    users = nn.Embedding(model.n_users, 64)
    nn.init.xavier_normal_(items.weight.data)
    nn.init.xavier_normal_(users.weight.data)
    assert torch.equal(model.item_embedding.weight, items.weight)
    assert torch.equal(model.user_embedding.weight, users.weight)
    assert sorted(model.state_dict()) == ["item_embedding.weight", "user_embedding.weight"]


def test_high_order_longer_than_the_history_is_refused(cycle_root):
    with pytest.raises(ConfigError, match="high_order"):
        built(cycle_root, high_order=9)
