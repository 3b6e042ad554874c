"""NARM: scores and losses equal RecBole 1.2.1's equations (a hand-written GRU, attention masked on padding,
no normalisation), RecBole's initialisation, and the dropout_probs check."""

import pytest
import torch
import torch.nn.functional as F

import recforge.models.sequential.narm  # noqa: F401  (registers NARM)
from recforge.errors import ConfigError
from recforge.registry import get_model_class
from recforge.utils import init_seed
from sequential_data import cycle_config, cycle_loaders, first_batch, write_cycle


@pytest.fixture(scope="module")
def cycle_root(tmp_path_factory):
    return write_cycle(tmp_path_factory.mktemp("cycle"))


def build(root, **settings):
    config = cycle_config(root, "NARM", embedding_size=6, hidden_size=5, **settings)
    train, _, _ = cycle_loaders(config)
    init_seed(0)
    return get_model_class("NARM")(config, train.dataset).eval(), first_batch(train)


def recbole_output(model, items, lengths):
    """RecBole's NARM.forward, written out (eval mode): GRU without biases, c_l = sum_j alpha_j h_j over
    non-padding j, alpha_j = v^T sigmoid(A1 h_j + A2 h_t), output B [c_l; c_g]."""
    gru = model.gru
    hidden = torch.zeros(len(items), gru.hidden_size)
    states = []
    for t in range(items.shape[1]):
        x = model.item_embedding.weight[items[:, t]]
        r_i, z_i, n_i = (x @ gru.weight_ih_l0.T).chunk(3, dim=1)
        r_h, z_h, n_h = (hidden @ gru.weight_hh_l0.T).chunk(3, dim=1)
        r, z = torch.sigmoid(r_i + r_h), torch.sigmoid(z_i + z_h)
        hidden = (1 - z) * torch.tanh(n_i + r * n_h) + z * hidden
        states.append(hidden)
    h = torch.stack(states, dim=1)  # [B, L, H]
    c_global = h[torch.arange(len(items)), lengths - 1]
    pre = torch.sigmoid(h @ model.a_1.weight.T + (c_global @ model.a_2.weight.T).unsqueeze(1))
    alpha = (pre * (items > 0).unsqueeze(2).float()) @ model.v_t.weight.T  # [B, L, 1]
    c_local = (alpha * h).sum(dim=1)
    return torch.cat([c_local, c_global], dim=1) @ model.b.weight.T


def test_scores_and_ce_loss_equal_recboles_equations(cycle_root):
    model, batch = build(cycle_root)
    items, lengths = batch["item_id_list"], batch["item_length"]
    assert (lengths < items.shape[1]).any() and (lengths > 1).any()  # padding and real histories both present
    expected = recbole_output(model, items, lengths) @ model.item_embedding.weight.T
    scores = model.full_sort_predict(batch)
    assert scores.shape == (len(items), model.n_items)
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model.predict(batch), expected[torch.arange(len(items)), batch["item_id"]])
    ce = F.cross_entropy(expected, batch["item_id"])
    assert model.calculate_loss(batch).item() == pytest.approx(ce.item(), rel=1e-5)


def test_padding_states_take_no_attention(cycle_root):
    """The GRU's states at padding positions are not zero, and sigmoid(.) > 0 there: only the mask keeps them out."""
    model, batch = build(cycle_root)
    items, lengths = batch["item_id_list"], batch["item_length"]
    row = int(torch.nonzero(lengths < items.shape[1])[0])
    with torch.no_grad():
        padded = model.forward(items[row : row + 1], lengths[row : row + 1])
        alone = model.forward(items[row : row + 1, : lengths[row]], lengths[row : row + 1])
    torch.testing.assert_close(alone, padded, rtol=1e-5, atol=1e-6)


def test_bpr_loss_is_recboles(cycle_root):
    model, batch = build(cycle_root, loss_type="BPR", train_neg_sample_args={"distribution": "uniform"})
    output = recbole_output(model, batch["item_id_list"], batch["item_length"])
    table = model.item_embedding.weight
    pos = (output * table[batch["item_id"]]).sum(-1)
    neg = (output * table[batch["neg_item_id"]]).sum(-1)
    expected = -torch.log(1e-10 + torch.sigmoid(pos - neg)).mean()
    assert model.calculate_loss(batch).item() == pytest.approx(expected.item(), rel=1e-5)


def test_initialisation_is_recboles(cycle_root):
    model, _ = build(cycle_root)
    assert model.item_embedding.weight[0].abs().sum() > 0  # xavier_normal_ overwrites the padding row too
    init_seed(0)  # RecBole's order: modules built in order (the GRU keeps PyTorch's init), then apply(xavier)
    embedding = torch.nn.Embedding(model.n_items, 6, padding_idx=0)
    gru = torch.nn.GRU(6, 5, 1, bias=False, batch_first=True)
    linears = [torch.nn.Linear(*shape, bias=False) for shape in ((5, 5), (5, 5), (5, 1), (10, 6))]
    for module in (embedding, *linears):
        torch.nn.init.xavier_normal_(module.weight.data)
    assert torch.equal(model.item_embedding.weight, embedding.weight)
    assert torch.equal(model.gru.weight_hh_l0, gru.weight_hh_l0)
    for ours, theirs in zip((model.a_1, model.a_2, model.v_t, model.b), linears, strict=True):
        assert torch.equal(ours.weight, theirs.weight)


def test_dropout_probs_needs_two_rates(cycle_root):
    config = cycle_config(cycle_root, "NARM", dropout_probs=[0.1, 0.2, 0.3])
    train, _, _ = cycle_loaders(config)
    with pytest.raises(ConfigError, match="dropout_probs"):
        get_model_class("NARM")(config, train.dataset)
