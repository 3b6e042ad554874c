"""The feature-aware sequential models (SASRecF, GRU4RecF, FDSA) against RecBole 1.2.1's formulation written out:
FeatureSeqEmbLayer's pooling of each position's token_seq feature (sum, mean, max), and each model's sequence
representation computed RecBole's way (every position through every layer, then the last item's row)."""

import pytest
import torch

from recforge.errors import ConfigError
from recforge.utils import init_seed
from sequential_data import cycle_config, cycle_loaders, first_batch, write_cycle


@pytest.fixture(scope="module")
def cycle_root(tmp_path_factory):
    return write_cycle(tmp_path_factory.mktemp("cycle"))


def built(root, name, **values):
    config = cycle_config(root, name, **values)
    train, _, test = cycle_loaders(config)
    init_seed(0)
    return config.model_class(config, train.dataset).eval(), train.dataset, first_batch(test)


def recbole_pooled(table, ids, mode):
    """RecBole's token_seq pooling of [B, L, S] ids with ``table`` [n, d] -> [B, L, d]."""
    mask = (ids != 0).float()
    count = mask.sum(-1, keepdim=True)
    embedded = table[ids]
    mask = mask.unsqueeze(-1).expand_as(embedded)
    if mode == "max":
        return torch.max(embedded - (1 - mask) * 1e9, dim=-2).values
    if mode == "sum":
        return torch.sum(embedded * mask, dim=-2)
    return torch.sum(embedded * mask, dim=-2) / (count + 1e-8)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_feature_layer_pools_each_positions_classes_as_recbole(cycle_root, mode):
    model, dataset, batch = built(cycle_root, "SASRecF", pooling_mode=mode)
    items = batch["item_id_list"]
    classes = torch.as_tensor(dataset.item_feat["class"].padded())  # [n_items, S], 0 pads
    table = model.feature_embed_layer.embedding.token_seq[0].weight
    expected = recbole_pooled(table, classes[items], mode)
    out = model.feature_embed_layer(items)
    assert out.shape == (*items.shape, 1, table.shape[1])
    assert torch.allclose(out[:, :, 0], expected, atol=1e-6)
    if mode == "max":  # the padding item has no class: RecBole's -1e9
        assert (out[items == 0] == -1e9).all()


def test_sasrecf_is_recboles(cycle_root):
    model, _, batch = built(cycle_root, "SASRecF", hidden_size=16, inner_size=32)
    items, lengths = batch["item_id_list"], batch["item_length"]
    features = model.feature_embed_layer(items).view(*items.shape, -1)
    x = model.concat_layer(torch.cat([model.item_embedding(items), features], -1))
    x = model.LayerNorm(x + model.position_embedding(torch.arange(items.shape[1])).unsqueeze(0))
    output = model.trm_encoder(x, model.get_attention_mask(items), output_all_encoded_layers=True)[-1]
    expected = output[torch.arange(len(items)), lengths - 1]
    assert torch.allclose(model(items, lengths), expected, atol=1e-5)
    assert torch.allclose(model.full_sort_predict(batch), expected @ model.item_embedding.weight.T, atol=1e-5)


def test_gru4recf_is_recboles(cycle_root):
    model, _, batch = built(cycle_root, "GRU4RecF", embedding_size=8, hidden_size=12)
    items, lengths = batch["item_id_list"], batch["item_length"]
    item_out, _ = model.item_gru_layers(model.item_embedding(items))
    feature_out, _ = model.feature_gru_layers(model.feature_embed_layer(items).view(*items.shape, -1))
    output = model.dense_layer(torch.cat([item_out, feature_out], -1))
    expected = output[torch.arange(len(items)), lengths - 1]
    assert torch.allclose(model(items, lengths), expected, atol=1e-6)
    assert model.item_gru_layers.bias is False and model.feature_gru_layers.input_size == 8


def test_fdsa_is_recboles(cycle_root):
    model, _, batch = built(cycle_root, "FDSA", hidden_size=16, inner_size=32)
    items, lengths = batch["item_id_list"], batch["item_length"]
    positions = model.position_embedding(torch.arange(items.shape[1])).unsqueeze(0)
    item_in = model.LayerNorm(model.item_embedding(items) + positions)
    table = model.feature_embed_layer(items)  # [B, L, 1, d]
    energy = model.feature_att_layer.projection(table)
    weights = torch.softmax(energy.squeeze(-1), dim=-1)
    assert torch.equal(weights, torch.ones_like(weights))  # one field: weight 1
    feature_in = model.LayerNorm((table * weights.unsqueeze(-1)).sum(-2) + positions)
    mask = model.get_attention_mask(items)
    rows = torch.arange(len(items))
    item_out = model.item_trm_encoder(item_in, mask, output_all_encoded_layers=True)[-1][rows, lengths - 1]
    feature_out = model.feature_trm_encoder(feature_in, mask, output_all_encoded_layers=True)[-1][rows, lengths - 1]
    expected = model.LayerNorm(model.concat_layer(torch.cat([item_out, feature_out], -1)))
    assert torch.allclose(model(items, lengths), expected, atol=1e-5)


@pytest.mark.parametrize("name", ["SASRecF", "GRU4RecF", "FDSA"])
def test_a_feature_that_is_not_loaded_is_named(cycle_root, name):
    config = cycle_config(cycle_root, name, selected_features=["class", "genre"])
    train = cycle_loaders(config)[0]
    with pytest.raises(ConfigError, match="config key 'selected_features': genre not among the item features"):
        config.model_class(config, train.dataset)


def test_two_features_are_concatenated_field_after_field(tmp_path):
    write_cycle(tmp_path)
    item_file = tmp_path / "cycle" / "cycle.item"
    lines = item_file.read_text().splitlines()
    rows = [f"{line}\t{k % 4}\t{k / 10}" for k, line in enumerate(lines[1:])]
    item_file.write_text("\n".join([lines[0] + "\tshelf:token\tprice:float", *rows]) + "\n")
    model, dataset, batch = built(tmp_path, "SASRecF", selected_features=["class", "shelf", "price"])
    assert model.feature_embed_layer.num_fields == 3 and model.concat_layer.in_features == 4 * 64
    out = model.feature_embed_layer(batch["item_id_list"])
    prices = torch.as_tensor(dataset.item_feat["price"], dtype=torch.float32)[batch["item_id_list"]]
    vector = model.feature_embed_layer.embedding.numeric.weight[1]
    assert torch.allclose(out[:, :, 2], prices.unsqueeze(-1) * vector, atol=1e-6)  # value x the field's vector
