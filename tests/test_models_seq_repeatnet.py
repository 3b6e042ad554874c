"""RepeatNet against RecBole's formulation written out: the dense [B, L, n_items] one-hot map of the history (RecBole
< 1.2; 1.2.1 scatters, as recforge does), its dropout placement, its loss with and without joint_train, and its
initialisation order."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import recforge.models.sequential.repeatnet  # noqa: F401  (registers RepeatNet)
from recforge.errors import ConfigError
from recforge.models.sequential.repeatnet import RepeatNet
from sequential_data import cycle_config, cycle_loaders, first_batch, write_cycle


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """``(config, model, batch)``: RepeatNet on 'cycle' and a training batch whose first rows repeat items."""
    root = write_cycle(tmp_path_factory.mktemp("cycle"))
    config = cycle_config(root, "RepeatNet", hidden_size=16, embedding_size=8)
    train, _, _ = cycle_loaders(config)
    torch.manual_seed(0)
    model = RepeatNet(config, train.dataset)
    batch = first_batch(train)
    seq, length = batch["item_id_list"].clone(), batch["item_length"].clone()
    seq[0], length[0] = torch.tensor([3, 4, 3, 5, 3, 0, 0, 0]), 5  # item 3 three times
    seq[1], length[1] = torch.tensor([7, 7, 0, 0, 0, 0, 0, 0]), 2
    seq[2], length[2] = torch.tensor([2, 0, 0, 0, 0, 0, 0, 0]), 1
    batch["item_id_list"], batch["item_length"] = seq, length
    batch["item_id"][0], batch["item_id"][1] = 3, 9  # a repeat and an exploration
    return config, model, batch


def build_map(item_seq: torch.Tensor, n_items: int) -> torch.Tensor:
    """RecBole < 1.2's ``build_map``: [B, L] -> the one-hot map [B, L, n_items]."""
    return torch.zeros(*item_seq.shape, n_items).scatter_(2, item_seq.unsqueeze(2), 1.0)


def recbole_forward(model: RepeatNet, item_seq, item_seq_len, dropout=lambda x: x):
    """RecBole's RepeatNet.forward from the model's weights, with the dense map; ``dropout`` is applied where
    RecBole applies its dropouts, in its order. Returns (prediction [B, n], repeat_explore [B, 2])."""
    m, r, e = model.repeat_explore_mechanism, model.repeat_recommendation_decoder, model.explore_recommendation_decoder
    seq_len, hidden = item_seq.size(1), model.hidden_size
    all_memory, _ = model.gru(model.item_matrix(item_seq))
    last_memory = all_memory[torch.arange(len(item_seq)), item_seq_len - 1]
    mask = item_seq == 0
    # Repeat_Explore_Mechanism
    a = dropout(m.Ure(all_memory))
    q = dropout(m.Wre(last_memory)).unsqueeze(1).repeat(1, seq_len, 1)
    alpha = torch.softmax(m.Vre(torch.tanh(a + q)), dim=1).repeat(1, 1, hidden)
    repeat_explore = torch.softmax(m.Wcre((alpha * all_memory).sum(dim=1)), dim=-1)
    # Repeat_Recommendation_Decoder, dense
    a = dropout(r.Ur(all_memory))
    q = dropout(r.Wr(last_memory)).unsqueeze(1).repeat(1, seq_len, 1)
    beta = torch.softmax(r.Vr(torch.tanh(q + a)).squeeze(2).masked_fill(mask, -1e9), dim=-1)
    repeat = torch.matmul(beta.unsqueeze(1), build_map(item_seq, model.n_items)).squeeze(1)
    # Explore_Recommendation_Decoder, dense
    a = dropout(e.Ue(all_memory))
    q = dropout(e.We(last_memory)).unsqueeze(1).repeat(1, seq_len, 1)
    gamma = torch.softmax(e.Ve(torch.tanh(a + q)).squeeze(-1).masked_fill(mask, -1e9).unsqueeze(-1), dim=1)
    context = torch.cat([(gamma.repeat(1, 1, hidden) * all_memory).sum(dim=1), last_memory], dim=1)
    logits = dropout(e.matrix_for_explore(context))
    explore_mask = torch.bmm((item_seq > 0).float().unsqueeze(1), build_map(item_seq, model.n_items)).squeeze(1)
    explore = torch.softmax(logits.masked_fill(explore_mask.bool(), float("-inf")), dim=1)
    prediction = repeat * repeat_explore[:, 0].unsqueeze(1) + explore * repeat_explore[:, 1].unsqueeze(1)
    return prediction, repeat_explore


def recbole_joint_loss(item_seq, pos_item, repeat_explore) -> torch.Tensor:
    """RecBole's repeat_explore_loss, loop and [B, 1] * [B] broadcast included."""
    repeat, explore = torch.zeros(len(item_seq)), torch.ones(len(item_seq))
    for index, (seq, pos) in enumerate(zip(item_seq, pos_item, strict=True)):
        if pos in seq:
            repeat[index], explore[index] = 1, 0
    repeat_loss = torch.mul(repeat.unsqueeze(1), torch.log(repeat_explore[:, 0] + 1e-8)).mean()
    explore_loss = torch.mul(explore.unsqueeze(1), torch.log(repeat_explore[:, 1] + 1e-8)).mean()
    return (-repeat_loss - explore_loss) / 2


def test_scores_equal_recboles_dense_formulation(built):
    _, model, batch = built
    model.eval()
    with torch.no_grad():
        scores = model.full_sort_predict(batch)
        expected, _ = recbole_forward(model, batch["item_id_list"], batch["item_length"])
        assert torch.allclose(scores, expected, atol=1e-6)
        assert torch.allclose(model.predict(batch), expected[torch.arange(len(batch)), batch["item_id"]], atol=1e-6)
    assert torch.allclose(scores.sum(dim=1), torch.ones(len(batch)), atol=1e-5)  # probabilities


def test_explore_excludes_the_history_and_repeat_covers_only_it(built):
    _, model, batch = built
    model.eval()
    seq = batch["item_id_list"]
    with torch.no_grad():
        memory, _ = model.gru(model.item_matrix(seq))
        last = memory[torch.arange(len(seq)), batch["item_length"] - 1]
        p_e = model.explore_recommendation_decoder(memory, last, seq)
        p_r = model.repeat_recommendation_decoder(memory, last, seq)
    in_history = torch.zeros_like(p_e, dtype=torch.bool).scatter_(1, seq, True)
    in_history[:, 0] = False  # padding is not history: column 0 stays open to the explore decoder (RecBole)
    assert torch.all(p_e[in_history] == 0) and torch.all(p_e[~in_history] > 0)
    assert torch.all(p_r[:, 1:][~in_history[:, 1:]] == 0) and torch.all(p_r[:, 0] < 1e-6)


def test_dropout_is_where_recbole_puts_it(built):
    _, model, batch = built
    model.train()
    p = model.dropout_prob
    torch.manual_seed(5)
    scores = model.full_sort_predict(batch)
    torch.manual_seed(5)
    expected, _ = recbole_forward(model, batch["item_id_list"], batch["item_length"], lambda x: F.dropout(x, p))
    model.eval()
    assert p > 0 and torch.allclose(scores, expected, atol=1e-6)


@pytest.mark.parametrize("joint_train", [False, True])
def test_loss_is_recboles(built, joint_train):
    _, model, batch = built
    model.eval()
    model.joint_train = joint_train
    try:
        loss = model.calculate_loss(batch)
    finally:
        model.joint_train = False
    prediction, repeat_explore = recbole_forward(model, batch["item_id_list"], batch["item_length"])
    target = batch["item_id"]
    expected = -torch.log(prediction[torch.arange(len(batch)), target] + 1e-8).mean()
    if joint_train:
        expected = expected + recbole_joint_loss(batch["item_id_list"], target, repeat_explore)
    assert torch.allclose(loss, expected, atol=1e-6)
    loss.backward()  # a mixture probability of 0 would give infinite gradients; 1e-8 keeps them finite
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    model.zero_grad()


def test_initialisation_and_names_are_recboles(built):
    """RecBole builds the embedding, the GRU and each module's linears in order, then applies xavier-normal to
    embeddings and linears (zero biases) in module order, the padding row included: the same seed gives the same
    weights under RecBole's state-dict names."""
    config, model, _ = built
    torch.manual_seed(0)
    n, d, h = model.n_items, model.embedding_size, model.hidden_size
    linear_shapes = {  # name, in, out, bias
        "repeat_explore_mechanism": (("Wre", h, h, 0), ("Ure", h, h, 0), ("Vre", h, 1, 0), ("Wcre", h, 2, 0)),
        "repeat_recommendation_decoder": (("Wr", h, h, 0), ("Ur", h, h, 0), ("Vr", h, 1, 1)),
        "explore_recommendation_decoder": (
            ("We", h, h, 1),
            ("Ue", h, h, 1),
            ("Ve", h, 1, 1),
            ("matrix_for_explore", 2 * h, n, 0),
        ),
    }
    modules = {"item_matrix": nn.Embedding(n, d, padding_idx=0), "gru": nn.GRU(d, h, batch_first=True)}
    for parent, linears in linear_shapes.items():
        for name, fan_in, fan_out, bias in linears:
            modules[f"{parent}.{name}"] = nn.Linear(fan_in, fan_out, bias=bool(bias))
    for name, module in modules.items():
        if name != "gru":
            nn.init.xavier_normal_(module.weight.data)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.constant_(module.bias.data, 0)
    expected = {
        f"{name}.{key}": value for name, module in modules.items() for key, value in module.state_dict().items()
    }
    state = model.state_dict()
    assert state.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(state[key], value), key
    assert state["item_matrix.weight"][0].abs().sum() > 0  # xavier overwrites the padding row, as RecBole


def test_only_its_own_loss(tmp_path):
    with pytest.raises(ConfigError, match="loss_type"):
        cycle_config(write_cycle(tmp_path), "RepeatNet", loss_type="BPR")
