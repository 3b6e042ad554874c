"""FPMC: RecBole's score (user-item factorisation + last-item transition factorisation), BPR loss and
initialisation, written out and compared; a hand-computed example."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import recforge.models.sequential.fpmc  # noqa: F401  (registers FPMC)
from recforge.errors import ConfigError
from recforge.registry import get_model_class, get_trainer
from recforge.utils import init_seed
from sequential_data import cycle_config, cycle_loaders, first_batch, write_cycle


@pytest.fixture(scope="module")
def cycle_root(tmp_path_factory):
    return write_cycle(tmp_path_factory.mktemp("cycle"))


def build(cycle_root, **overrides):
    config = cycle_config(cycle_root, "FPMC", **{"embedding_size": 5, **overrides})
    train, _, _ = cycle_loaders(config)
    init_seed(0)
    return get_model_class("FPMC")(config, train.dataset).eval(), first_batch(train)


def test_fpmc_scores_and_loss_are_recboles(cycle_root):
    model, batch = build(cycle_root)
    users, items, lengths = batch["user_id"], batch["item_id_list"], batch["item_length"]
    last = items[torch.arange(len(items)), lengths - 1]
    ui, iu, li, il = (getattr(model, name).weight for name in ("UI_emb", "IU_emb", "LI_emb", "IL_emb"))
    expected = ui[users] @ iu.T + li[last] @ il.T  # <UI_u, IU_i> + <IL_i, LI_l>
    assert torch.allclose(model.full_sort_predict(batch), expected, atol=1e-6)
    rows = torch.arange(len(items))
    pos, neg = expected[rows, batch["item_id"]], expected[rows, batch["neg_item_id"]]
    assert torch.allclose(model.predict(batch), pos, atol=1e-6)
    bpr = -torch.log(1e-10 + torch.sigmoid(pos - neg)).mean()
    assert model.calculate_loss(batch).item() == pytest.approx(bpr.item(), rel=1e-6)


def test_fpmc_hand_computed_example(cycle_root):
    """Two dimensions: user (1, 2); last item l = 3 with LI = (0, 1); candidate 4 with IU = (3, -1), IL = (2, 5):
    score = 1 * 3 + 2 * -1 + 2 * 0 + 5 * 1 = 6."""
    model, batch = build(cycle_root, embedding_size=2)
    with torch.no_grad():
        model.UI_emb.weight[1] = torch.tensor([1.0, 2.0])
        model.LI_emb.weight[3] = torch.tensor([0.0, 1.0])
        model.IU_emb.weight[4] = torch.tensor([3.0, -1.0])
        model.IL_emb.weight[4] = torch.tensor([2.0, 5.0])
    one = batch[torch.tensor([0])]
    one["user_id"], one["item_id"] = torch.tensor([1]), torch.tensor([4])
    one["item_id_list"], one["item_length"] = torch.tensor([[5, 3, 0, 0, 0, 0, 0, 0]]), torch.tensor([2])
    assert model.predict(one).tolist() == [6.0]  # one row: [1], not RecBole's squeezed 0-d score
    assert model.full_sort_predict(one)[0, 4].item() == 6.0


def test_fpmc_initialisation_is_recboles(cycle_root):
    """RecBole builds UI, IU, LI (padding 0), IL in this order, then Xavier-normal on each (padding row too)."""
    model, _ = build(cycle_root)
    init_seed(0)
    tables = {
        "UI_emb": nn.Embedding(model.n_users, 5),
        "IU_emb": nn.Embedding(model.n_items, 5),
        "LI_emb": nn.Embedding(model.n_items, 5, padding_idx=0),
        "IL_emb": nn.Embedding(model.n_items, 5),
    }
    for name, table in tables.items():
        nn.init.xavier_normal_(table.weight.data)
        assert torch.equal(getattr(model, name).weight, table.weight), name


def test_fpmc_trains_with_bpr_only(cycle_root):
    with pytest.raises(ConfigError, match="'loss_type'"):
        cycle_config(cycle_root, "FPMC", loss_type="CE")
    config = cycle_config(cycle_root, "FPMC", train_neg_sample_args=None)  # loads, as in RecBole
    train, valid, _ = cycle_loaders(config)
    model = config.model_class(config, train.dataset)
    with pytest.raises(ConfigError, match="FPMC is trained on pairs"):  # refused before the first batch
        get_trainer(type(model))(config, model).fit(train, valid, verbose=False, saved=False)
