"""STAMP: scores and losses equal RecBole 1.2.1's equations (attention over every position, padding included, not
normalised; no final sigmoid) and RecBole's initialisation."""

import pytest
import torch
import torch.nn.functional as F

import recforge.models.sequential.stamp  # noqa: F401  (registers STAMP)
from recforge.registry import get_model_class
from recforge.utils import init_seed
from sequential_data import cycle_config, cycle_loaders, first_batch, write_cycle


@pytest.fixture(scope="module")
def cycle_root(tmp_path_factory):
    return write_cycle(tmp_path_factory.mktemp("cycle"))


def build(root, **settings):
    config = cycle_config(root, "STAMP", embedding_size=5, **settings)
    train, _, _ = cycle_loaders(config)
    init_seed(0)
    model = get_model_class("STAMP")(config, train.dataset)
    with torch.no_grad():  # RecBole's tiny initial weights make every score ~1e-6: scale them to test real values
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.5)
    return model, first_batch(train)


def recbole_output(model, items, lengths):
    """RecBole's STAMP.forward, written out row by row with explicit loops over the history's positions."""
    rows = []
    for b in range(len(items)):
        x = model.item_embedding.weight[items[b]]  # [L, d], padding rows included
        last = x[lengths[b] - 1]
        mean = x.sum(dim=0) / lengths[b].float()
        m_a = mean.clone()
        for j in range(len(x)):
            pre = x[j] @ model.w1.weight.T + last @ model.w2.weight.T + mean @ model.w3.weight.T + model.b_a
            m_a = m_a + (torch.sigmoid(pre) @ model.w0.weight.T) * x[j]
        h_s = torch.tanh(m_a @ model.mlp_a.weight.T + model.mlp_a.bias)
        h_t = torch.tanh(last @ model.mlp_b.weight.T + model.mlp_b.bias)
        rows.append(h_s * h_t)
    return torch.stack(rows)


def test_scores_and_ce_loss_equal_recboles_equations(cycle_root):
    model, batch = build(cycle_root)
    items, lengths = batch["item_id_list"], batch["item_length"]
    assert (lengths < items.shape[1]).any() and (lengths > 1).any()
    expected = recbole_output(model, items, lengths) @ model.item_embedding.weight.T
    scores = model.full_sort_predict(batch)
    assert scores.shape == (len(items), model.n_items) and expected.abs().max() > 0.1
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model.predict(batch), expected[torch.arange(len(items)), batch["item_id"]])
    ce = F.cross_entropy(expected, batch["item_id"])
    assert model.calculate_loss(batch).item() == pytest.approx(ce.item(), rel=1e-5)


def test_bpr_loss_is_recboles(cycle_root):
    model, batch = build(cycle_root, loss_type="BPR", train_neg_sample_args={"distribution": "uniform"})
    output = recbole_output(model, batch["item_id_list"], batch["item_length"])
    table = model.item_embedding.weight
    pos = (output * table[batch["item_id"]]).sum(-1)
    neg = (output * table[batch["neg_item_id"]]).sum(-1)
    expected = -torch.log(1e-10 + torch.sigmoid(pos - neg)).mean()
    assert model.calculate_loss(batch).item() == pytest.approx(expected.item(), rel=1e-5)


def test_padding_positions_take_part_as_in_recbole(cycle_root):
    """RecBole attends over all L positions and its init fills the padding row: padding changes the output."""
    model, batch = build(cycle_root)
    items, lengths = batch["item_id_list"], batch["item_length"]
    row = int(torch.nonzero(lengths < items.shape[1])[0])
    with torch.no_grad():
        padded = model.forward(items[row : row + 1], lengths[row : row + 1])
        alone = model.forward(items[row : row + 1, : lengths[row]], lengths[row : row + 1])
    assert not torch.allclose(alone, padded, atol=1e-4)


def test_initialisation_is_recboles(cycle_root):
    config = cycle_config(cycle_root, "STAMP", embedding_size=5)
    train, _, _ = cycle_loaders(config)
    init_seed(0)
    model = get_model_class("STAMP")(config, train.dataset)
    init_seed(0)  # RecBole's order: the modules built in order, then normal(0, 0.002) / normal(0, 0.05) in order
    embedding = torch.nn.Embedding(model.n_items, 5, padding_idx=0)
    square = [torch.nn.Linear(5, 5, bias=False) for _ in range(3)]
    w0 = torch.nn.Linear(5, 1, bias=False)
    mlps = [torch.nn.Linear(5, 5) for _ in range(2)]
    torch.nn.init.normal_(embedding.weight.data, 0, 0.002)
    for linear in (*square, w0, *mlps):
        torch.nn.init.normal_(linear.weight.data, 0, 0.05)
    assert torch.equal(model.item_embedding.weight, embedding.weight) and model.item_embedding.weight[0].any()
    for ours, theirs in zip(
        (model.w1, model.w2, model.w3, model.w0, model.mlp_a, model.mlp_b), (*square, w0, *mlps), strict=True
    ):
        assert torch.equal(ours.weight, theirs.weight)
    assert not model.b_a.any() and not model.mlp_a.bias.any() and not model.mlp_b.bias.any()
    assert list(dict(model.named_parameters())) == [
        "b_a",
        "item_embedding.weight",
        "w1.weight",
        "w2.weight",
        "w3.weight",
        "w0.weight",
        "mlp_a.weight",
        "mlp_a.bias",
        "mlp_b.weight",
        "mlp_b.bias",
    ]
