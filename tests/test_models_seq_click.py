"""DIN and DIEN against RecBole 1.2.1's formulation written out (SequenceAttLayer, the DIN score, the AUGRU cell
over each history, DIEN's auxiliary loss), their pointwise loss on (target: 1, sampled item: 0), DIENDataset's
negative histories, and RecBole's sequential_DIN.yaml defaults."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from recforge import Config
from recforge.data.dien_dataset import negative_items
from recforge.errors import ConfigError
from recforge.registry import get_trainer
from recforge.utils import init_seed
from sequential_data import cycle_config, cycle_loaders, first_batch, write_cycle

SMALL = {"embedding_size": 4, "mlp_hidden_size": [8, 6]}


@pytest.fixture(scope="module")
def cycle_root(tmp_path_factory):
    return write_cycle(tmp_path_factory.mktemp("cycle"))


def built(root, name, **values):
    config = cycle_config(root, name, **SMALL, **values)
    train, _, test = cycle_loaders(config)
    init_seed(0)
    model = config.model_class(config, train.dataset)
    with torch.no_grad():  # batch norm statistics other than 0 / 1, so eval mode is not the identity
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    return model.eval(), train, first_batch(train)


def recbole_attention(layer, queries, keys, lengths, softmax):
    """RecBole's SequenceAttLayer.forward."""
    hidden, steps = queries.shape[-1], keys.shape[1]
    queries = queries.repeat(1, steps).view(-1, steps, hidden)
    output = layer.att_mlp_layers(torch.cat([queries, keys, queries - keys, queries * keys], dim=-1))
    output = torch.transpose(layer.dense(output), -1, -2).squeeze(1)
    mask = torch.arange(steps).view(1, -1).repeat(output.size(0), 1) >= lengths.unsqueeze(1)
    output = output.masked_fill(mask, -np.inf if softmax else 0.0).unsqueeze(1) / (hidden**0.5)
    return torch.softmax(output, dim=2) if softmax else output


def test_din_scores_as_recbole(cycle_root):
    model, _, batch = built(cycle_root, "DIN")
    items, lengths, targets = batch["item_id_list"], batch["item_length"], batch["item_id"]
    table = model.item_table(torch.cat([items, targets.unsqueeze(1)], 1))  # [B, T + 1, F d]
    history, target = table[:, :-1], table[:, -1]
    weights = recbole_attention(model.attention, target, history, lengths, softmax=False)
    pooled = torch.matmul(weights, history).squeeze(1)
    logits = model.dnn_predict_layers(model.dnn_mlp_layers(torch.cat([pooled, target, pooled * target], -1)))
    assert torch.allclose(model.predict(batch), torch.sigmoid(logits.squeeze(1)), atol=1e-6)
    # the item table: the id's row and the classes' mean (pooling_mode mean), each embedding_size wide
    assert table.shape[-1] == 2 * SMALL["embedding_size"]


def test_din_loss_is_bce_over_the_target_and_the_sampled_item(cycle_root):
    model, _, batch = built(cycle_root, "DIN")
    model.train()
    doubled = {key: batch[key].repeat(2, *([1] * (batch[key].dim() - 1))) for key in ("item_id_list", "item_length")}
    items = torch.cat([batch["item_id"], batch["neg_item_id"]])
    torch.manual_seed(0)
    loss = model.calculate_loss(batch)
    torch.manual_seed(0)
    logits = model.logits(_Rows(doubled, len(items)), items)
    labels = torch.cat([torch.ones(len(batch)), torch.zeros(len(batch))])
    assert loss.item() == pytest.approx(F.binary_cross_entropy_with_logits(logits, labels).item(), rel=1e-6)
    assert (batch["neg_item_id"] != batch["item_id"]).all()


class _Rows(dict):
    """A batch of ``n`` rows given as a dict (the doubled batch RecBole builds)."""

    def __init__(self, values, n):
        super().__init__(values)
        self.n = n

    def __len__(self):
        return self.n


def recbole_augru(cell, states, weights, lengths):
    """RecBole's DynamicRNN over packed sequences with AUGRUCell, the output at each row's last step."""
    outputs = []
    for row in range(len(states)):
        hidden = torch.zeros(1, states.shape[2])
        for t in range(int(lengths[row])):
            gi = F.linear(states[row, t : t + 1], cell.weight_ih, cell.bias_ih)
            gh = F.linear(hidden, cell.weight_hh, cell.bias_hh)
            i_r, i_u, i_h = gi.chunk(3, 1)
            h_r, h_u, h_h = gh.chunk(3, 1)
            reset = torch.sigmoid(i_r + h_r)
            update = weights[row, t] * torch.sigmoid(i_u + h_u)
            hidden = (1 - update) * hidden + update * torch.tanh(i_h + reset * h_h)
        outputs.append(hidden)
    return torch.cat(outputs)


def test_dien_scores_as_recbole(cycle_root):
    model, _, batch = built(cycle_root, "DIEN")
    items, lengths, targets = batch["item_id_list"], batch["item_length"], batch["item_id"]
    history, negatives = model.item_table(items), model.item_table(batch["neg_item_id_list"])
    target, users = model.item_table(targets), model.user_table(batch["user_id"])
    extractor = model.interset_extractor
    states = []
    for row in range(len(items)):  # the GRU over each history's real positions, zeros after
        out, _ = extractor.gru(history[row : row + 1, : lengths[row]])
        states.append(F.pad(out, (0, 0, 0, items.shape[1] - int(lengths[row]))))
    states = torch.cat(states)
    layer = model.interest_evolution.attention_layer
    weights = recbole_attention(layer, target, states, lengths, softmax=True).squeeze(1)
    evolved = recbole_augru(model.interest_evolution.dynamic_rnn, states, weights, lengths)
    logits = model.dnn_predict_layer(model.dnn_mlp_layers(torch.cat([evolved, target, users], -1))).squeeze(1)
    assert torch.allclose(model.predict(batch), torch.sigmoid(logits), atol=1e-5)
    # the auxiliary loss: each state against the next clicked item (1) and its negative (0), linear network
    pairs = [(b, t) for b in range(len(items)) for t in range(int(lengths[b]) - 1)]
    net = extractor.auxiliary_net
    click = torch.stack([net(torch.cat([states[b, t], history[b, t + 1]])) for b, t in pairs])
    no_click = torch.stack([net(torch.cat([states[b, t], negatives[b, t + 1]])) for b, t in pairs])
    expected = F.binary_cross_entropy_with_logits(
        torch.cat([click, no_click]).view(-1), torch.cat([torch.ones(len(pairs)), torch.zeros(len(pairs))])
    )
    assert model.interests(batch)[1].item() == pytest.approx(expected.item(), rel=1e-5)


def test_dien_negative_histories_differ_from_the_clicked_items(cycle_root):
    _, train, batch = built(cycle_root, "DIEN")
    lists, negatives = batch["item_id_list"], batch["neg_item_id_list"]
    real = lists > 0
    assert (negatives[~real] == 0).all() and (negatives[real] != lists[real]).all() and (negatives[real] > 0).all()
    again = cycle_loaders(cycle_config(cycle_root, "DIEN", **SMALL))[0].dataset
    assert np.array_equal(
        again.inter_feat["neg_item_id_list"].values, train.dataset.inter_feat["neg_item_id_list"].values
    )
    draws = negative_items(np.array([1, 2, 3] * 2000), 5, np.random.default_rng(0))
    assert (
        set(draws[::3]) == {2, 3, 4}
        and set(draws[1::3]) == {1, 3, 4}
        and math.isclose(np.mean(draws[::3] == 2), 1 / 3, abs_tol=0.03)
    )


def test_recboles_sequential_din_defaults_apply_on_ml100k():
    config = Config("DIN", "ml-100k", config_dict={"data_path": "unused"}, cmd_args=[])
    assert config["eval_args"]["mode"] == {"valid": "uni100", "test": "uni100"}
    assert config["metrics"] == ["AUC", "LogLoss"] and config["valid_metric"] == "AUC"
    assert config["load_col"]["user"] == ["user_id", "age", "gender", "occupation"]
    assert config["load_col"]["item"] == ["item_id", "release_year"]
    full = {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full"}
    ranked = Config("DIEN", "ml-100k", config_dict={"data_path": "unused", "eval_args": full}, cmd_args=[])
    assert "AUC" not in ranked["metrics"]


def test_training_without_sampled_items_is_refused(cycle_root):
    config = cycle_config(cycle_root, "DIN", train_neg_sample_args=None, **SMALL)
    train, valid, _ = cycle_loaders(config)
    model = config.model_class(config, train.dataset)
    with pytest.raises(ConfigError, match="DIN is trained on pairs .* needs negative sampling"):
        get_trainer(type(model))(config, model).fit(train, valid, saved=False)
