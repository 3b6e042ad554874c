"""S3Rec against RecBole 1.2.1's formulation written out: the attribute table, the pretraining batch's rules
(masking, negatives, segments) and the four pretraining losses (AAP, MIP, MAP, SP) computed RecBole's way on a
fixed batch; fine-tuning and prediction as SASRec's causal encoder at each history's last item."""

import pytest
import torch
import torch.nn.functional as F

from recforge.errors import ConfigError
from recforge.utils import init_seed
from sequential_data import N_ITEMS, cycle_class, cycle_config, cycle_loaders, first_batch, write_cycle


@pytest.fixture
def model_and_batch(tmp_path):
    write_cycle(tmp_path)
    config = cycle_config(tmp_path, "S3Rec", hidden_size=16, inner_size=32, mask_ratio=0.5)
    train, _, test = cycle_loaders(config)
    init_seed(0)
    model = config.model_class(config, train.dataset).eval()
    return model, first_batch(train), first_batch(test)


def test_attribute_table_is_each_items_values(tmp_path):
    write_cycle(tmp_path)
    config = cycle_config(tmp_path, "S3Rec")
    dataset = cycle_loaders(config)[0].dataset
    table = config.model_class(config, dataset).attributes
    values = list(dataset.field2id_token["class"])
    assert table.shape == (N_ITEMS + 1, 5) and values[0] == "[PAD]"  # even, odd, m0, m1, m2
    assert table[0].sum() == 0  # the padding item has none
    for item, token in enumerate(dataset.field2id_token["item_id"][1:], start=1):
        expected = torch.zeros(5)
        expected[[values.index(v) - 1 for v in cycle_class(int(token[1:])).split()]] = 1
        assert torch.equal(table[item], expected), token


def test_pretraining_batch_follows_recboles_rules(model_and_batch):
    model, batch, _ = model_and_batch
    items, lengths = batch["item_id_list"], batch["item_length"]
    torch.manual_seed(3)
    drawn = model.pretraining_batch(items, lengths)
    real = torch.arange(items.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)
    masked = drawn["masked"]
    assert not (masked & ~real).any() and masked.any() and (~masked & real).any()
    assert torch.equal(drawn["masked_items"][masked], torch.full((int(masked.sum()),), model.mask_token))
    assert torch.equal(drawn["masked_items"][~masked], items[~masked])
    negatives = drawn["negative_items"]
    for row in range(len(items)):
        history = set(items[row, : lengths[row]].tolist())
        for position in masked[row].nonzero().view(-1).tolist():
            negative = int(negatives[row, position])
            assert negative not in history and 1 <= negative < model.n_items  # never padding nor the mask token
    concatenated = items[real].tolist()
    for row in range(len(items)):
        length, history = int(lengths[row]), items[row, : lengths[row]].tolist()
        masked_segment = drawn["masked_segment"][row].tolist()
        segment, negative_segment = drawn["segment"][row].tolist(), drawn["negative_segment"][row].tolist()
        assert (
            masked_segment[length:] == segment[length:] == negative_segment[length:] == [0] * (len(items[row]) - length)
        )
        if length < 2:
            assert masked_segment[:length] == segment[:length] == negative_segment[:length] == history
            continue
        span = [i for i in range(length) if masked_segment[i] == model.mask_token]
        assert 1 <= len(span) <= length // 2 and span == list(range(span[0], span[0] + len(span)))
        assert [masked_segment[i] for i in range(length) if i not in span] == [
            h for i, h in enumerate(history) if i not in span
        ]
        assert [segment[i] for i in span] == [history[i] for i in span]
        assert all(segment[i] == model.mask_token for i in range(length) if i not in span)
        assert all(negative_segment[i] == model.mask_token for i in range(length) if i not in span)
        piece = [negative_segment[i] for i in span]
        assert any(concatenated[s : s + len(span)] == piece for s in range(len(concatenated) - len(span) + 1))


def recbole_pretrain_loss(model, items, lengths, drawn):
    """RecBole's S3Rec.pretrain, written out on the drawn batch (its segments' outputs at each history's last
    item, which is RecBole's position -1 of its left-padded rows): every position through every layer."""

    def encode(sequence):
        positions = torch.arange(sequence.size(1)).unsqueeze(0)
        hidden = model.LayerNorm(model.item_embedding(sequence) + model.position_embedding(positions))
        mask = model.get_attention_mask(sequence, bidirectional=True)
        return model.trm_encoder(hidden, mask, output_all_encoded_layers=True)[-1]

    hidden = model.hidden_size if hasattr(model, "hidden_size") else model.item_embedding.weight.shape[1]
    bce = torch.nn.BCEWithLogitsLoss(reduction="none")
    sequence = drawn["masked_items"]
    output = encode(sequence)
    features = model.attributes[items].view(-1, model.attributes.shape[1])
    table = model.feature_embedding.weight
    aap_score = torch.matmul(table, model.aap_norm(output).view(-1, hidden, 1)).squeeze(-1)
    aap_mask = ((sequence != model.mask_token) * (sequence != 0)).float().view(-1, 1)
    aap_loss = torch.sum(bce(aap_score, features) * aap_mask)
    mip = model.mip_norm(output.view(-1, hidden))
    pos = torch.sigmoid(torch.sum(mip * model.item_embedding(items).view(-1, hidden), -1))
    neg = torch.sigmoid(torch.sum(mip * model.item_embedding(drawn["negative_items"]).view(-1, hidden), -1))
    mip_mask = (sequence == model.mask_token).float().view(-1)
    mip_loss = torch.sum(bce(pos - neg, torch.ones_like(pos)) * mip_mask)
    map_score = torch.matmul(table, model.map_norm(output).view(-1, hidden, 1)).squeeze(-1)
    map_loss = torch.sum(bce(map_score, features) * mip_mask.view(-1, 1))
    rows = torch.arange(len(items))
    context = encode(drawn["masked_segment"])[rows, lengths - 1]
    segment = encode(drawn["segment"])[rows, lengths - 1]
    negative = encode(drawn["negative_segment"])[rows, lengths - 1]
    context = model.sp_norm(context)
    pos_segment = torch.sigmoid(torch.sum(context * segment, -1))
    neg_segment = torch.sigmoid(torch.sum(context * negative, -1))
    sp_loss = torch.sum(bce(pos_segment - neg_segment, torch.ones_like(pos_segment)))
    return 0.2 * aap_loss + mip_loss + map_loss + 0.5 * sp_loss


def test_pretraining_loss_is_recboles(model_and_batch):
    model, batch, _ = model_and_batch
    items, lengths = batch["item_id_list"], batch["item_length"]
    torch.manual_seed(5)
    drawn = model.pretraining_batch(items, lengths)
    expected = recbole_pretrain_loss(model, items, lengths, drawn)
    torch.manual_seed(5)  # the same draws inside the loss
    assert model.calculate_loss(batch).item() == pytest.approx(expected.item(), rel=1e-5)
    assert model.loss_reductions == {"calculate_loss": "sum"}  # RecBole sums over the batch


def test_prediction_is_the_causal_output_at_the_last_item(model_and_batch):
    model, _, batch = model_and_batch
    items, lengths = batch["item_id_list"], batch["item_length"]
    positions = torch.arange(items.size(1)).unsqueeze(0)
    hidden = model.LayerNorm(model.item_embedding(items) + model.position_embedding(positions))
    output = model.trm_encoder(hidden, model.get_attention_mask(items), output_all_encoded_layers=True)[-1]
    last = output[torch.arange(len(items)), lengths - 1]
    scores = model.full_sort_predict(batch)
    assert scores.shape == (len(items), model.n_items)  # the mask token's row is not scored
    assert torch.allclose(scores, last @ model.item_embedding.weight[: model.n_items].T, atol=1e-5)
    model.train_stage = "finetune"
    expected = F.cross_entropy(last @ model.item_embedding.weight.T, batch["item_id"])  # + the mask token's row
    assert model.calculate_loss(batch).item() == pytest.approx(expected.item(), rel=1e-5)


def test_a_missing_attribute_column_is_named(tmp_path):
    write_cycle(tmp_path)
    config = cycle_config(tmp_path, "S3Rec", item_attribute="genre")
    train = cycle_loaders(config)[0]
    with pytest.raises(ConfigError, match="config key 'item_attribute': 'genre' is not a token or token_seq column"):
        config.model_class(config, train.dataset)


def test_ml100k_loads_the_item_columns_recbole_loads_for_s3rec():
    from recforge import Config

    config = Config("S3Rec", "ml-100k", config_dict={"data_path": "unused"}, cmd_args=[])
    assert config["load_col"]["item"] == ["item_id", "release_year", "class"]
    assert "item" not in (Config("SASRec", "ml-100k", cmd_args=[])["load_col"] or {})
