"""Caser: RecBole's convolutions, fully-connected layers, loss and initialisation, written out and compared."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import recforge.models.sequential.caser  # noqa: F401  (registers Caser)
from recforge.errors import ConfigError
from recforge.registry import get_model_class
from recforge.utils import init_seed
from sequential_data import cycle_config, cycle_loaders, first_batch, write_cycle

SMALL = {"embedding_size": 6, "nv": 2, "nh": 3, "dropout_prob": 0.0, "reg_weight": 0.01}


@pytest.fixture(scope="module")
def cycle_root(tmp_path_factory):
    return write_cycle(tmp_path_factory.mktemp("cycle"))


def build(cycle_root, **overrides):
    config = cycle_config(cycle_root, "Caser", **{**SMALL, **overrides})
    train, _, _ = cycle_loaders(config)
    init_seed(0)
    return get_model_class("Caser")(config, train.dataset).eval(), first_batch(train)


def recbole_caser_output(model, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """RecBole's Caser.forward with explicit sums instead of convolutions: a vertical filter weights the L rows of
    the embedding matrix; a horizontal filter of height h covers rows p..p+h-1, then ReLU and a max over p."""
    emb = model.item_embedding.weight[items]  # [B, L, d]
    length = emb.shape[1]
    w_v = model.conv_v.weight[:, 0, :, 0]  # [nv, L]
    out_v = torch.einsum("cl,bld->bcd", w_v, emb) + model.conv_v.bias.view(1, -1, 1)
    pooled = []
    for h, conv in zip(range(1, length + 1), model.conv_h, strict=True):
        windows = torch.stack([emb[:, p : p + h] for p in range(length - h + 1)], dim=1)  # [B, P, h, d]
        values = torch.einsum("bphd,chd->bcp", windows, conv.weight[:, 0]) + conv.bias.view(1, -1, 1)
        pooled.append(torch.relu(values).max(dim=2).values)
    features = torch.cat([out_v.flatten(1), *pooled], dim=1)
    z = torch.relu(features @ model.fc1.weight.T + model.fc1.bias)
    joined = torch.cat([z, model.user_embedding.weight[users]], dim=1)
    return torch.relu(joined @ model.fc2.weight.T + model.fc2.bias)


def test_caser_scores_and_ce_loss_are_recboles(cycle_root):
    model, batch = build(cycle_root)
    users, items, targets = batch["user_id"], batch["item_id_list"], batch["item_id"]
    output = recbole_caser_output(model, users, items)
    expected = output @ model.item_embedding.weight.T
    assert torch.allclose(model.full_sort_predict(batch), expected, atol=1e-5)
    assert torch.allclose(model.predict(batch), expected[torch.arange(len(items)), targets], atol=1e-5)
    weights = [model.user_embedding.weight, model.item_embedding.weight, model.conv_v.weight]
    weights += [model.fc1.weight, model.fc2.weight, *(conv.weight for conv in model.conv_h)]
    reg = sum(torch.sqrt((w**2).sum()) for w in weights)
    loss = F.cross_entropy(expected, targets) + 0.01 * reg
    assert model.calculate_loss(batch).item() == pytest.approx(loss.item(), rel=1e-5)
    assert 0.01 * reg.item() > 1e-3 * loss.item()  # the regulariser weighs in the value checked


def test_caser_bpr_loss_is_recboles(cycle_root):
    model, _ = build(cycle_root, loss_type="BPR", train_neg_sample_args={"distribution": "uniform"})
    batch = first_batch(cycle_loaders(model.config)[0])
    output = recbole_caser_output(model, batch["user_id"], batch["item_id_list"])
    table = model.item_embedding.weight
    pos = (output * table[batch["item_id"]]).sum(-1)
    neg = (output * table[batch["neg_item_id"]]).sum(-1)
    bpr = -torch.log(1e-10 + torch.sigmoid(pos - neg)).mean()
    weights = [model.user_embedding.weight, model.item_embedding.weight, model.conv_v.weight]
    weights += [model.fc1.weight, model.fc2.weight, *(conv.weight for conv in model.conv_h)]
    expected = bpr + 0.01 * sum(w.norm() for w in weights)
    assert model.calculate_loss(batch).item() == pytest.approx(expected.item(), rel=1e-5)


def test_caser_initialisation_is_recboles(cycle_root):
    """RecBole builds user, item embeddings, conv_v, conv_h (heights 1..L), fc1, fc2 in this order, then draws
    normal(0, 1/d) embeddings and Xavier-normal linear weights (zero biases); convolutions keep PyTorch's."""
    model, _ = build(cycle_root)
    d, length = 6, model.max_seq_length
    init_seed(0)
    users, items = nn.Embedding(model.n_users, d, padding_idx=0), nn.Embedding(model.n_items, d, padding_idx=0)
    conv_v = nn.Conv2d(1, 2, kernel_size=(length, 1))
    conv_h = [nn.Conv2d(1, 3, kernel_size=(h, d)) for h in range(1, length + 1)]
    fc1, fc2 = nn.Linear(2 * d + 3 * length, d), nn.Linear(2 * d, d)
    for table in (users, items):
        nn.init.normal_(table.weight.data, 0, 1.0 / d)
    for layer in (fc1, fc2):
        nn.init.xavier_normal_(layer.weight.data)
        nn.init.zeros_(layer.bias.data)
    expected = {"user_embedding": users, "item_embedding": items, "conv_v": conv_v, "fc1": fc1, "fc2": fc2}
    expected |= {f"conv_h.{h}": conv for h, conv in enumerate(conv_h)}
    state = model.state_dict()
    for name, module in expected.items():
        for key, tensor in module.state_dict().items():
            assert torch.equal(state[f"{name}.{key}"], tensor), f"{name}.{key}"
    assert model.item_embedding.weight[0].abs().sum() > 0  # RecBole's normal_ overwrites the padding row


def test_caser_without_vertical_filters_and_refusing_none(cycle_root):
    model, batch = build(cycle_root, nv=0)
    expected = recbole_caser_output(model, batch["user_id"], batch["item_id_list"]) @ model.item_embedding.weight.T
    assert torch.allclose(model.full_sort_predict(batch), expected, atol=1e-5)
    with pytest.raises(ConfigError, match="'nv'"):
        build(cycle_root, nv=0, nh=0)
