"""BERT4Rec against RecBole 1.2.1's formulation written out: the cloze loss over the masked positions (a multi-hot
gather of the full output, CE weighted by MASK_INDEX > 0) and the test-time mask appended per row."""

import pytest
import torch

from recforge.utils import init_seed
from sequential_data import cycle_config, cycle_loaders, first_batch, write_cycle


@pytest.fixture
def model_and_batch(tmp_path):
    write_cycle(tmp_path)
    config = cycle_config(tmp_path, "BERT4Rec", hidden_size=16, inner_size=32, mask_ratio=0.5, ft_ratio=0.0)
    train, _, test = cycle_loaders(config)
    init_seed(0)
    model = config.model_class(config, train.dataset).eval()
    return model, first_batch(train), first_batch(test)


def recbole_full_output(model, item_seq):
    """RecBole's forward: every position through every layer and the output block."""
    positions = torch.arange(item_seq.size(1)).unsqueeze(0)
    hidden = model.LayerNorm(model.item_embedding(item_seq) + model.position_embedding(positions))
    mask = model.get_attention_mask(item_seq, bidirectional=True)
    output = model.trm_encoder(hidden, mask, output_all_encoded_layers=True)[-1]
    return model.output_ln(model.output_gelu(model.output_ffn(output)))


def test_cloze_loss_is_recboles(model_and_batch):
    model, batch, _ = model_and_batch
    masked_index = batch["MASK_INDEX"]
    output = recbole_full_output(model, batch["Mask_item_id_list"])
    multi_hot = torch.zeros(masked_index.numel(), output.shape[1])
    multi_hot[torch.arange(masked_index.numel()), masked_index.view(-1)] = 1
    gathered = torch.bmm(multi_hot.view(*masked_index.shape, -1), output)
    logits = gathered @ model.item_embedding.weight[: model.n_items].T + model.output_bias
    targets = (masked_index > 0).float().view(-1)
    losses = torch.nn.functional.cross_entropy(
        logits.view(-1, model.n_items), batch["Pos_item_id"].view(-1), reduction="none"
    )
    expected = (losses * targets).sum() / targets.sum()
    assert model.calculate_loss(batch).item() == pytest.approx(expected.item(), rel=1e-5)


def test_prediction_appends_the_mask_as_recbole(model_and_batch):
    model, _, batch = model_and_batch
    items, lengths = batch["item_id_list"], batch["item_length"]
    rows = []
    for row, length in zip(items.tolist(), lengths.tolist(), strict=True):  # RecBole's reconstruct_test_data
        extended = [*row, 0]
        extended[length] = model.mask_token
        rows.append(extended[1:])
    reconstructed = torch.tensor(rows)
    assert torch.equal(model.reconstruct_test_data(items, lengths), reconstructed)
    output = recbole_full_output(model, reconstructed)[torch.arange(len(items)), lengths - 1]
    expected = output @ model.item_embedding.weight[: model.n_items].T + model.output_bias
    assert torch.allclose(model.full_sort_predict(batch), expected, atol=1e-5)
    assert model.full_sort_predict(batch).shape == (len(items), model.n_items)  # the mask token is not scored
