"""TransRec: RecBole's translation score, loss (with its detached regularisers and its RegLoss over T's
elements) and initialisation, written out and compared; a hand-computed example."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import recforge.models.sequential.transrec  # noqa: F401  (registers TransRec)
from recforge.errors import ConfigError
from recforge.registry import get_model_class, get_trainer
from recforge.utils import init_seed
from sequential_data import cycle_config, cycle_loaders, first_batch, write_cycle


@pytest.fixture(scope="module")
def cycle_root(tmp_path_factory):
    return write_cycle(tmp_path_factory.mktemp("cycle"))


def build(cycle_root, **overrides):
    config = cycle_config(cycle_root, "TransRec", **{"embedding_size": 5, **overrides})
    train, _, _ = cycle_loaders(config)
    init_seed(0)
    model = get_model_class("TransRec")(config, train.dataset).eval()
    with torch.no_grad():
        model.T.copy_(torch.tensor([0.3, -0.2, 0.0, 0.1, -0.4][: model.embedding_size]))  # T starts at 0
    return model, first_batch(train)


def test_transrec_scores_and_loss_are_recboles(cycle_root):
    model, batch = build(cycle_root)
    users, items, lengths = batch["user_id"], batch["item_id_list"], batch["item_length"]
    gamma, beta, t_u = model.item_embedding.weight, model.bias.weight[:, 0], model.user_embedding.weight[users]
    point = t_u + model.T + gamma[items[torch.arange(len(items)), lengths - 1]]  # [B, d]
    expected = beta - ((point[:, None, :] - gamma[None, :, :]) ** 2).sum(-1).sqrt()  # [B, n_items]
    assert torch.allclose(model.full_sort_predict(batch), expected, atol=1e-5)
    rows, pos_items = torch.arange(len(items)), batch["item_id"]
    pos, neg = expected[rows, pos_items], expected[rows, batch["neg_item_id"]]
    assert torch.allclose(model.predict(batch), pos, atol=1e-5)
    bpr = -torch.log(1e-10 + torch.sigmoid(pos - neg)).mean()
    reg_t = sum(w.norm(2) for w in model.T)  # RecBole's RegLoss()(T) iterates over T's elements
    regularisers = (gamma[pos_items].norm() + t_u.norm() + beta[pos_items].norm()) / len(items) + reg_t
    loss = model.calculate_loss(batch)
    assert loss.item() == pytest.approx((bpr + regularisers).item(), rel=1e-5)
    # the three embedding regularisers are detached (RecBole's): the gradient is that of bpr + RegLoss(T)
    params = list(model.parameters())
    got = torch.autograd.grad(loss, params)
    want = torch.autograd.grad(bpr + reg_t, params)
    for name, g, w in zip([n for n, _ in model.named_parameters()], got, want, strict=True):
        assert torch.allclose(g, w, atol=1e-6), name


def test_transrec_hand_computed_example(cycle_root):
    """d = 2: t_u = (1, 0), T = (0, 1), last item at (1, 1), candidate at (2, 5) with bias 0.5: the point is
    (2, 2), its distance to the candidate 3, the score 0.5 - 3 = -2.5."""
    model, batch = build(cycle_root, embedding_size=2)
    with torch.no_grad():
        model.T.copy_(torch.tensor([0.0, 1.0]))
        model.user_embedding.weight[1] = torch.tensor([1.0, 0.0])
        model.item_embedding.weight[3] = torch.tensor([1.0, 1.0])
        model.item_embedding.weight[4] = torch.tensor([2.0, 5.0])
        model.bias.weight[4] = 0.5
    one = batch[torch.tensor([0])]
    one["user_id"], one["item_id"] = torch.tensor([1]), torch.tensor([4])
    one["item_id_list"], one["item_length"] = torch.tensor([[5, 3, 0, 0, 0, 0, 0, 0]]), torch.tensor([2])
    assert model.predict(one).tolist() == [-2.5]
    assert model.full_sort_predict(one)[0, 4].item() == pytest.approx(-2.5, abs=1e-6)


def test_transrec_initialisation_is_recboles(cycle_root):
    """RecBole builds user, item embeddings and the bias table (padding 0) in this order, then Xavier-normal on
    each (padding rows too); T is 0."""
    config = cycle_config(cycle_root, "TransRec", embedding_size=5)
    train, _, _ = cycle_loaders(config)
    init_seed(0)
    model = get_model_class("TransRec")(config, train.dataset)
    init_seed(0)
    tables = {
        "user_embedding": nn.Embedding(model.n_users, 5, padding_idx=0),
        "item_embedding": nn.Embedding(model.n_items, 5, padding_idx=0),
        "bias": nn.Embedding(model.n_items, 1, padding_idx=0),
    }
    for name, table in tables.items():
        nn.init.xavier_normal_(table.weight.data)
        assert torch.equal(getattr(model, name).weight, table.weight), name
    assert torch.equal(model.T, torch.zeros(5))


def test_transrec_needs_sampled_negatives(cycle_root, tmp_path):
    config = cycle_config(cycle_root, "TransRec", train_neg_sample_args=None)
    train, valid, _ = cycle_loaders(config)
    model = get_model_class("TransRec")(config, train.dataset)
    with pytest.raises(ConfigError, match="train_neg_sample_args"):
        get_trainer(type(model))(config, model, run_dir=tmp_path / "run").fit(train, valid, saved=False)
