"""NextItNet: scores and losses equal RecBole 1.2.1's equations (causal dilated convolutions written out as sums
over the kernel's taps, the output at position L-1, the norm regulariser), RecBole's initialisation."""

import math

import pytest
import torch
import torch.nn.functional as F

import recforge.models.sequential.nextitnet  # noqa: F401  (registers NextItNet)
from recforge.registry import get_model_class
from recforge.utils import init_seed
from sequential_data import cycle_config, cycle_loaders, first_batch, write_cycle


@pytest.fixture(scope="module")
def cycle_root(tmp_path_factory):
    return write_cycle(tmp_path_factory.mktemp("cycle"))


def build(root, **settings):
    settings = {"embedding_size": 6, "block_num": 2, "dilations": [1, 2], "reg_weight": 0.01, **settings}
    config = cycle_config(root, "NextItNet", **settings)
    train, _, _ = cycle_loaders(config)
    init_seed(0)
    return get_model_class("NextItNet")(config, train.dataset), first_batch(train)


def causal_conv(x, conv, dilation):
    """out[t] = b + sum_k W[:, :, 0, k] x[t - (K - 1 - k) * dilation] (x before position 0 is zero): [B, L, C]."""
    taps = conv.weight.shape[-1]
    out = conv.bias.expand_as(x).clone()
    for k in range(taps):
        shift = (taps - 1 - k) * dilation
        shifted = torch.cat([torch.zeros_like(x[:, :shift]), x[:, : x.shape[1] - shift]], dim=1)
        out = out + shifted @ conv.weight[:, :, 0, k].T
    return out


def recbole_output(model, items):
    """RecBole's NextItNet.forward with residual blocks (b): relu(LN(conv)) twice, dilations d and 2d, plus x."""
    x = model.item_embedding.weight[items]
    for block, dilation in zip(model.residual_blocks, model.dilations, strict=True):
        out = F.relu(
            F.layer_norm(causal_conv(x, block.conv1, dilation), (x.shape[-1],), block.ln1.weight, block.ln1.bias, 1e-8)
        )
        out = F.relu(
            F.layer_norm(
                causal_conv(out, block.conv2, 2 * dilation), (x.shape[-1],), block.ln2.weight, block.ln2.bias, 1e-8
            )
        )
        x = out + x
    return x[:, -1] @ model.final_layer.weight.T + model.final_layer.bias


def regulariser(model):
    """reg_weight * (||E|| + ||W_final|| + sum of the blocks' conv and LayerNorm weight norms), norms not squared."""
    weights = [model.item_embedding.weight, model.final_layer.weight]
    for block in model.residual_blocks:
        weights += [block.conv1.weight, block.ln1.weight, block.conv2.weight, block.ln2.weight]
    return model.reg_weight * sum(w.pow(2).sum().sqrt() for w in weights)


def test_scores_and_ce_loss_equal_recboles_equations(cycle_root):
    model, batch = build(cycle_root)
    with torch.no_grad():  # LayerNorm's default weights are 1 and biases 0: make them count
        for block in model.residual_blocks:
            for ln in (block.ln1, block.ln2):
                ln.weight.add_(torch.randn_like(ln.weight) * 0.3)
                ln.bias.add_(torch.randn_like(ln.bias) * 0.3)
    items = batch["item_id_list"]
    expected = recbole_output(model, items) @ model.item_embedding.weight.T
    scores = model.full_sort_predict(batch)
    assert scores.shape == (len(items), model.n_items)
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model.predict(batch), expected[torch.arange(len(items)), batch["item_id"]])
    ce = F.cross_entropy(expected, batch["item_id"]) + regulariser(model)
    assert regulariser(model).item() > 0.01
    assert model.calculate_loss(batch).item() == pytest.approx(ce.item(), rel=1e-5)


def test_bpr_loss_and_no_regulariser_at_weight_zero(cycle_root):
    model, batch = build(cycle_root, loss_type="BPR", reg_weight=0.0, train_neg_sample_args={"distribution": "uniform"})
    output = recbole_output(model, batch["item_id_list"])
    table = model.item_embedding.weight
    pos = (output * table[batch["item_id"]]).sum(-1)
    neg = (output * table[batch["neg_item_id"]]).sum(-1)
    expected = -torch.log(1e-10 + torch.sigmoid(pos - neg)).mean()
    assert model.calculate_loss(batch).item() == pytest.approx(expected.item(), rel=1e-5)


def test_the_output_is_the_last_positions_and_causal(cycle_root):
    """RecBole reads position L-1 whatever the history's length; position t sees positions <= t only."""
    model, batch = build(cycle_root)
    items = batch["item_id_list"]
    with torch.no_grad():
        hidden = model.residual_blocks(model.item_embedding(items))
        torch.testing.assert_close(model.forward(items), model.final_layer(hidden[:, -1]))
        changed = items.clone()
        changed[:, 5:] = (changed[:, 5:] % (model.n_items - 1)) + 1
        later = model.residual_blocks(model.item_embedding(changed))
    torch.testing.assert_close(later[:, :5], hidden[:, :5])
    assert not torch.allclose(later[:, 5:], hidden[:, 5:])


def test_blocks_and_initialisation_are_recboles(cycle_root):
    model, _ = build(cycle_root, block_num=3, dilations=[1, 4])
    assert model.dilations == [1, 4, 1, 4, 1, 4] and len(model.residual_blocks) == 6
    assert [b.conv2.dilation for b in model.residual_blocks] == [(2, 2), (8, 8)] * 3  # an int dilation, as RecBole
    bound = math.sqrt(1.0 / model.n_items)
    table = model.item_embedding.weight
    assert table.abs().max() <= bound and table[0].any()  # uniform_ fills the padding row too
    assert torch.equal(model.final_layer.bias, torch.full((6,), 0.1))
    init_seed(0)  # RecBole's order: modules built in order, then uniform embedding and xavier-normal final layer
    embedding = torch.nn.Embedding(model.n_items, 6, padding_idx=0)
    convs = [torch.nn.Conv2d(6, 6, (1, 3)) for _ in range(12)]
    final = torch.nn.Linear(6, 6)
    torch.nn.init.uniform_(embedding.weight.data, -bound, bound)
    torch.nn.init.xavier_normal_(final.weight.data)
    assert torch.equal(table, embedding.weight) and torch.equal(model.final_layer.weight, final.weight)
    ours = [c for b in model.residual_blocks for c in (b.conv1, b.conv2)]
    assert all(torch.equal(a.weight, b.weight) for a, b in zip(ours, convs, strict=True))
    assert "residual_blocks.5.conv2.weight" in model.state_dict()
