"""The contract of every sequential model: it trains on 'cycle' through the plain Trainer and learns the cycle,
its full-ranking scores equal its pairwise ones, and its state round-trips; RecBole's transformer and helpers."""

from __future__ import annotations

import math

import pytest
import torch

from recforge.config.model_keys import model_declaration
from recforge.models import model_names
from recforge.models.sequential.base import SequentialRecommender
from recforge.models.sequential.layers import MultiHeadAttention, TransformerEncoder
from recforge.registry import get_model_class
from recforge.utils import init_seed
from sequential_data import (
    check_sequential_contract,
    cycle_config,
    cycle_loaders,
    first_batch,
    train_on_cycle,
    write_cycle,
)

SEQUENTIAL_MODELS = [name for name in model_names() if (model_declaration(name) or {}).get("type") == "sequential"]


@pytest.fixture(scope="module")
def cycle_root(tmp_path_factory):
    return write_cycle(tmp_path_factory.mktemp("cycle"))


@pytest.mark.slow
@pytest.mark.parametrize("name", SEQUENTIAL_MODELS)
def test_sequential_model_contract(cycle_root, name, one_thread):
    check_sequential_contract(cycle_root, name)


@pytest.mark.parametrize("name", SEQUENTIAL_MODELS)
def test_create_model_builds_what_the_constructor_builds(cycle_root, name, one_thread):
    from test_models import check_guarded_build

    check_guarded_build(cycle_config(cycle_root, name), name)


def recbole_attention(layer: MultiHeadAttention, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """RecBole 1.2.1's MultiHeadAttention.forward, written out: softmax(QK^T / sqrt(d_head) + mask) V."""
    heads, size = layer.num_attention_heads, layer.attention_head_size

    def split(t):
        return t.view(*t.shape[:-1], heads, size).permute(0, 2, 1, 3)

    q, k, v = split(layer.query(x)), split(layer.key(x)), split(layer.value(x))
    scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(size) + mask
    context = torch.matmul(torch.softmax(scores, dim=-1), v).permute(0, 2, 1, 3).reshape(x.shape)
    return layer.LayerNorm(layer.dense(context) + x)


def test_fused_attention_equals_recbole_formulation():
    torch.manual_seed(0)
    layer = MultiHeadAttention(n_heads=2, hidden_size=8, hidden_dropout_prob=0.0, attn_dropout_prob=0.0, eps=1e-12)
    layer.eval()
    items = torch.tensor([[3, 4, 5, 0, 0], [1, 0, 0, 0, 0], [2, 3, 4, 5, 6]])
    x = torch.randn(3, 5, 8)
    for bidirectional in (False, True):
        mask = SequentialRecommender.get_attention_mask(items, bidirectional)
        assert torch.allclose(layer(x, mask), recbole_attention(layer, x, mask), atol=1e-6)


def test_attention_mask_is_recboles():
    mask = SequentialRecommender.get_attention_mask(torch.tensor([[7, 8, 0]]))
    assert mask.shape == (1, 1, 3, 3)
    assert mask[0, 0].tolist() == [[0.0, -10000.0, -10000.0], [0.0, 0.0, -10000.0], [0.0, 0.0, -10000.0]]
    both = SequentialRecommender.get_attention_mask(torch.tensor([[7, 8, 0]]), bidirectional=True)
    assert both.shape == (1, 1, 1, 3) and both[0, 0, 0].tolist() == [0.0, 0.0, -10000.0]


def test_gather_indexes_takes_each_rows_position():
    output = torch.arange(24.0).view(2, 3, 4)
    picked = SequentialRecommender.gather_indexes(output, torch.tensor([2, 0]))
    assert picked.tolist() == [output[0, 2].tolist(), output[1, 0].tolist()]


def test_transformer_output_at_a_position_ignores_later_positions():
    """Causal attention: the output at position t depends on items 0..t only (so padding after a history does
    not change its representation)."""
    torch.manual_seed(1)
    encoder = TransformerEncoder(n_layers=2, n_heads=2, hidden_size=8, inner_size=16).eval()
    items = torch.tensor([[4, 5, 6, 7], [4, 5, 9, 0]])
    x = torch.randn(1, 4, 8).expand(2, -1, -1).clone()
    x[1, 2:] = torch.randn(2, 8)
    out = encoder(x, SequentialRecommender.get_attention_mask(items), output_all_encoded_layers=False)[-1]
    assert torch.allclose(out[0, :2], out[1, :2], atol=1e-6)


def test_sasrec_scores_the_last_positions_output_against_the_item_table(cycle_root):
    config = cycle_config(cycle_root, "SASRec")
    train, _, _ = cycle_loaders(config)
    init_seed(0)
    model = get_model_class("SASRec")(config, train.dataset).eval()
    batch = first_batch(train)
    items, lengths = batch["item_id_list"], batch["item_length"]
    encoded = model.encode(items)
    expected = encoded[torch.arange(len(items)), lengths - 1] @ model.item_embedding.weight.T
    assert torch.allclose(model.full_sort_predict(batch), expected, atol=1e-6)
    ce = torch.nn.functional.cross_entropy(expected, batch["item_id"])
    assert model.calculate_loss(batch).item() == pytest.approx(ce.item(), rel=1e-5)


def test_gru4rec_is_recboles_gru_at_the_last_item(cycle_root):
    config = cycle_config(cycle_root, "GRU4Rec", dropout_prob=0.0)
    train, _, _ = cycle_loaders(config)
    init_seed(0)
    model = get_model_class("GRU4Rec")(config, train.dataset).eval()
    batch = first_batch(train)
    items, lengths = batch["item_id_list"], batch["item_length"]
    gru = model.gru_layers
    hidden = torch.zeros(len(items), gru.hidden_size)
    outputs = []
    for t in range(items.shape[1]):  # the GRU equations, no biases (RecBole's bias=False)
        x = model.item_embedding(items[:, t])
        r_i, z_i, n_i = (x @ gru.weight_ih_l0.T).chunk(3, dim=1)
        r_h, z_h, n_h = (hidden @ gru.weight_hh_l0.T).chunk(3, dim=1)
        r, z = torch.sigmoid(r_i + r_h), torch.sigmoid(z_i + z_h)
        hidden = (1 - z) * torch.tanh(n_i + r * n_h) + z * hidden
        outputs.append(hidden)
    last = torch.stack(outputs, dim=1)[torch.arange(len(items)), lengths - 1]
    expected = model.dense(last) @ model.item_embedding.weight.T
    assert torch.allclose(model.full_sort_predict(batch), expected, atol=1e-5)
    bpr = cycle_config(cycle_root, "GRU4Rec", loss_type="BPR", train_neg_sample_args={"distribution": "uniform"})
    batch = first_batch(cycle_loaders(bpr)[0])
    assert (batch["neg_item_id"] != batch["item_id"]).all()


def test_all_position_examples_tile_each_users_sequence(tmp_path):
    from conftest import write_atomic

    rows = [["a", f"x{i}", i] for i in range(6)] + [["b", "x1", 1], ["b", "x2", 2]]
    write_atomic(tmp_path, "s", "inter", ["user_id:token", "item_id:token", "timestamp:float"], rows)
    config = cycle_config(tmp_path, "SASRec", MAX_ITEM_LIST_LENGTH=2, train_all_positions=True)
    config = type(config)("SASRec", "s", config_dict=dict(config.items()), cmd_args=[])
    train, _, _ = cycle_loaders(config)
    part = train.dataset
    token = part.field2id_token["item_id"]
    histories = [[token[i] for i in row if i] for row in part.inter_feat["item_id_list"].padded()]
    following = [[token[i] for i in row if i] for row in part.inter_feat["next_item_id_list"].padded()]
    # a's training examples predict x1..x3 (x4 validates, x5 tests): the chunks x1 | x0 and x3 | x1 x2 tile them;
    # b's one example (x2 | x1) trains
    expected = [(["x0"], ["x1"]), (["x1"], ["x2"]), (["x1", "x2"], ["x2", "x3"])]
    assert sorted(zip(histories, following, strict=True)) == expected
    batch = first_batch(train)
    assert batch["next_item_id_list"].shape == batch["item_id_list"].shape


def test_all_positions_loss_is_the_next_items_cross_entropy(cycle_root):
    config = cycle_config(cycle_root, "SASRec", train_all_positions=True)
    train, _, _ = cycle_loaders(config)
    init_seed(0)
    model = get_model_class("SASRec")(config, train.dataset).eval()
    batch = first_batch(train)
    outputs = model.encode(batch["item_id_list"])
    targets = batch["next_item_id_list"]
    lengths = batch["item_length"]
    rows = [(b, t) for b in range(len(targets)) for t in range(int(lengths[b]))]
    logits = torch.stack([outputs[b, t] for b, t in rows]) @ model.item_embedding.weight.T
    expected = torch.nn.functional.cross_entropy(logits, torch.stack([targets[b, t] for b, t in rows]))
    assert model.calculate_loss(batch).item() == pytest.approx(expected.item(), rel=1e-5)
    assert (targets[:, :-1][targets[:, 1:] > 0] == batch["item_id_list"][:, 1:][targets[:, 1:] > 0]).all()


def test_gbce_by_hand(cycle_root):
    config = cycle_config(cycle_root, "GRU4Rec", loss_type="gBCE", gbce_negatives=3, gbce_t=0.5, dropout_prob=0.0)
    train, _, _ = cycle_loaders(config)
    init_seed(0)
    model = get_model_class("GRU4Rec")(config, train.dataset).eval()
    batch = first_batch(train)
    hidden = model.forward(batch["item_id_list"], batch["item_length"])
    torch.manual_seed(5)
    loss = model.calculate_loss(batch)
    torch.manual_seed(5)
    negatives = torch.randint(1, model.n_items, (len(hidden), 3))
    table = model.item_embedding.weight
    alpha = 3 / (model.n_items - 2)
    beta = alpha * (0.5 * (1 - 1 / alpha) + 1 / alpha)
    total = 0.0
    for row in range(len(hidden)):
        positive = torch.sigmoid(hidden[row] @ table[batch["item_id"][row]])
        negative = torch.sigmoid(table[negatives[row]] @ hidden[row])
        total += -(beta * torch.log(positive) + torch.log(1 - negative).sum()) / 4
    assert loss.item() == pytest.approx(total.item() / len(hidden), rel=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["SASRec", "GRU4Rec"])
@pytest.mark.parametrize("loss_type", ["CE", "gBCE"])
def test_all_position_training_learns_the_cycle(cycle_root, name, loss_type, one_thread):
    extra = {"train_all_positions": True, "loss_type": loss_type, "train_batch_size": 8, "gbce_negatives": 4}
    if loss_type == "gBCE":  # at 0.01 the transformer settles on one prediction under gBCE's few negatives
        extra.update(learning_rate=0.003, epochs=40)
    check_sequential_contract(cycle_root, name, **extra)


def test_all_position_training_needs_per_position_outputs(cycle_root):
    from recforge.errors import ConfigError

    config = cycle_config(cycle_root, "NARM", train_all_positions=True)
    train, _, _ = cycle_loaders(config)
    with pytest.raises(ConfigError, match="config key 'train_all_positions': NARM with loss_type CE cannot train"):
        get_model_class("NARM")(config, train.dataset)


@pytest.mark.slow
@pytest.mark.parametrize("name", SEQUENTIAL_MODELS)
def test_sequential_models_train_in_bf16(cycle_root, name, one_thread):
    """One epoch under bf16 autocast: a finite loss and finite scores."""
    _, model, trainer, (_, _, test) = train_on_cycle(cycle_root, name, precision="bf16", epochs=1)
    assert all(torch.isfinite(torch.tensor(loss)) for loss in trainer.train_loss_dict.values())
    with torch.no_grad():
        assert torch.isfinite(model.eval().full_sort_predict(first_batch(test))[:, 1:]).all()


def test_gelu_is_recboles_erf_formula():
    from recforge.models.sequential.layers import gelu

    x = torch.linspace(-6, 6, 1001)
    assert torch.allclose(gelu(x), x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0))), atol=1e-6)
