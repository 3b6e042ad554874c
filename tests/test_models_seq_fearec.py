"""FEARec: its hybrid attention, scores and losses equal RecBole 1.2.1's equations written out here, its frequency
bands are RecBole's, and its same-target sampling has RecBole's distribution."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import recforge.models.sequential.fearec  # noqa: F401  (registers FEARec)
from recforge.data.columns import HistoryColumn, Windows
from recforge.errors import ConfigError
from recforge.models.sequential.fearec import SameTargetSampler
from recforge.models.sequential.fearec_layers import frequency_band
from recforge.registry import get_model_class
from recforge.utils import init_seed
from sequential_data import cycle_config, cycle_loaders, first_batch, write_cycle

SMALL = {"hidden_size": 8, "inner_size": 16, "hidden_dropout_prob": 0.0, "attn_dropout_prob": 0.0}


@pytest.fixture(scope="module")
def cycle_root(tmp_path_factory):
    return write_cycle(tmp_path_factory.mktemp("cycle"))


def build(root, **overrides):
    config = cycle_config(root, "FEARec", **{**SMALL, **overrides})
    train, _, test = cycle_loaders(config)
    init_seed(0)
    return get_model_class("FEARec")(config, train.dataset).eval(), train, test


def recbole_delay_average(values, corr, factor, training):
    """RecBole 1.2.1's time_delay_agg_training / _inference: [B, h, e, L] values, [B, h, e, L'] correlations."""
    batch, heads, channels, length = values.shape
    top_k = int(factor * math.log(length))
    mean_value = torch.mean(torch.mean(corr, dim=1), dim=1)
    out = torch.zeros_like(values).float()
    if training:
        index = torch.topk(torch.mean(mean_value, dim=0), top_k, dim=-1)[1]
        weights = torch.softmax(torch.stack([mean_value[:, index[i]] for i in range(top_k)], dim=-1), dim=-1)
        for i in range(top_k):
            out = out + torch.roll(values, -int(index[i]), -1) * weights[:, i].view(batch, 1, 1, 1)
        return out
    weights, delay = torch.topk(mean_value, top_k, dim=-1)
    weights = torch.softmax(weights, dim=-1)
    start = torch.arange(length).view(1, 1, 1, length).repeat(batch, heads, channels, 1)
    for i in range(top_k):
        pattern = torch.gather(values.repeat(1, 1, 1, 2), -1, start + delay[:, i].view(batch, 1, 1, 1))
        out = out + pattern * weights[:, i].view(batch, 1, 1, 1)
    return out


def recbole_hybrid_attention(att, x, mask, config, layer, training=False):
    """RecBole 1.2.1's HybridAttention.forward, written out (no dropout)."""
    batch, length, _ = x.shape
    heads, size = att.num_attention_heads, att.attention_head_size
    bins = length // 2 + 1
    left, right = frequency_band(config, layer)
    band = list(range(left, right))
    q, k, v = (lin(x).view(batch, length, heads, size) for lin in (att.query_layer, att.key_layer, att.value_layer))
    q_fft = torch.fft.rfft(q.permute(0, 2, 3, 1).contiguous(), dim=-1)
    k_fft = torch.fft.rfft(k.permute(0, 2, 3, 1).contiguous(), dim=-1)
    box = torch.zeros(batch, heads, size, bins, dtype=torch.cfloat)
    box[:, :, :, band] = q_fft[:, :, :, band] * torch.conj(k_fft[:, :, :, band])
    values = v.permute(0, 2, 3, 1).contiguous()
    agg = recbole_delay_average(values, torch.fft.irfft(box, dim=-1), config["topk_factor"], training)
    context = agg.permute(0, 3, 1, 2).reshape(batch, length, heads * size)
    if config["dual_domain"]:
        time_band = band if config["std"] else list(range(bins))

        def limited(spectrum):
            kept = torch.zeros(batch, heads, size, bins, dtype=torch.cfloat)
            kept[:, :, :, time_band] = spectrum[:, :, :, time_band]
            return torch.fft.irfft(kept, dim=-1).permute(0, 1, 3, 2)

        qs, ks, vs = limited(q_fft), limited(k_fft), limited(torch.fft.rfft(values, dim=-1))
        probs = torch.softmax(qs @ ks.transpose(-1, -2) / math.sqrt(size) + mask, dim=-1)
        spatial = (probs @ vs).permute(0, 2, 1, 3).reshape(batch, length, heads * size)
        context = (1 - config["spatial_ratio"]) * context + config["spatial_ratio"] * spatial
    return att.LayerNorm(att.dense(context) + x)


def recbole_mask(items):
    """RecBole 1.2.1's FEARec.get_attention_mask."""
    length = items.shape[1]
    causal = (torch.triu(torch.ones(1, length, length), diagonal=1) == 0).unsqueeze(1).long()
    return (1.0 - ((items > 0).long()[:, None, None, :] * causal).float()) * -10000.0


def recbole_output(model, items, lengths, training=False):
    """RecBole 1.2.1's FEARec.forward (no dropout)."""
    positions = model.position_embedding(torch.arange(items.shape[1])).unsqueeze(0)
    hidden = model.LayerNorm(model.item_embedding(items) + positions)
    for i, block in enumerate(model.item_encoder.layer):
        hidden = recbole_hybrid_attention(
            block.hybrid_attention, hidden, recbole_mask(items), model.config, i, training
        )
        ff = block.feed_forward
        inner = ff.dense_1(hidden)
        hidden = ff.LayerNorm(ff.dense_2(inner * 0.5 * (1.0 + torch.erf(inner / math.sqrt(2.0)))) + hidden)
    return hidden[torch.arange(len(items)), lengths - 1]


def randomise(model) -> None:
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)


def test_frequency_bands_are_recboles():
    def bands(n_layers, global_ratio, length=8):
        config = {"MAX_ITEM_LIST_LENGTH": length, "n_layers": n_layers, "global_ratio": global_ratio}
        return [frequency_band(config, i) for i in range(n_layers)]

    assert bands(2, 1.0) == [(0, 5), (0, 5)]  # the defaults: every layer sees the whole spectrum of 5 bins
    assert bands(2, 0.6) == [(2, 5), (0, 3)]  # G: windows of 0.6, slid by (5 * 0.4) // 1 = 2
    assert bands(3, 0.5) == [(2, 5), (1, 4), (0, 3)]  # slide (5 * 0.5) // 2 = 1
    assert bands(2, 0.4) == [(2, 5), (0, 2)]  # L: halves, 2.5 bins each, highest first
    assert bands(1, 1.0) == [(0, 5)]  # RecBole divides by zero here
    assert bands(4, 0.25, length=50) == [(19, 26), (13, 19), (6, 13), (0, 6)]


@pytest.mark.parametrize(
    "overrides",
    [{}, {"dual_domain": True, "spatial_ratio": 0.3, "global_ratio": 0.4, "topk_factor": 2, "std": True}],
    ids=["defaults", "dual_domain"],
)
def test_scores_are_recboles_equations(cycle_root, overrides, one_thread):
    model, train, test = build(cycle_root, **overrides)
    randomise(model)
    for batch in (first_batch(train), first_batch(test)):
        items, lengths = batch["item_id_list"], batch["item_length"]
        expected = recbole_output(model, items, lengths) @ model.item_embedding.weight.T
        with torch.no_grad():
            assert torch.allclose(model.full_sort_predict(batch), expected, atol=1e-4)
            picked = expected[torch.arange(len(items)), batch["item_id"]]
            assert torch.allclose(model.predict(batch), picked, atol=1e-4)
            ce = F.cross_entropy(expected, batch["item_id"])
            assert model.calculate_loss(batch).item() == pytest.approx(ce.item(), rel=1e-5)


def test_training_shares_the_batchs_delays(cycle_root, one_thread):
    """In training the delays are the batch's most correlated ones (RecBole's training aggregation)."""
    model, train, _ = build(cycle_root, dual_domain=True, spatial_ratio=0.5)
    randomise(model)
    batch = first_batch(train)
    items, lengths = batch["item_id_list"], batch["item_length"]
    model.train()
    with torch.no_grad():
        expected = recbole_output(model, items, lengths, training=True)
        assert torch.allclose(model(items, lengths), expected, atol=1e-4)
        model.eval()
        assert not torch.allclose(model(items, lengths), expected, atol=1e-3)


def recbole_info_nce(z_i, z_j, temp, sim):
    """RecBole 1.2.1's FEARec.info_nce and its cross-entropy, written out."""
    batch = len(z_i)
    z = torch.cat((z_i, z_j), dim=0)
    if sim == "cos":
        scores = F.cosine_similarity(z.unsqueeze(1), z.unsqueeze(0), dim=2) / temp
    else:
        scores = torch.mm(z, z.T) / temp
    positives = torch.cat((torch.diag(scores, batch), torch.diag(scores, -batch))).reshape(2 * batch, 1)
    mask = torch.ones((2 * batch, 2 * batch), dtype=bool).fill_diagonal_(0)
    for i in range(batch):
        mask[i, batch + i] = 0
        mask[batch + i, i] = 0
    logits = torch.cat((positives, scores[mask].reshape(2 * batch, -1)), dim=1)
    return F.cross_entropy(logits, torch.zeros(2 * batch, dtype=torch.long))


@pytest.mark.parametrize("sim", ["dot", "cos"])
def test_info_nce_is_recboles(cycle_root, sim):
    model, _, _ = build(cycle_root, sim=sim, tau=0.7)
    z_i, z_j = torch.randn(5, 8, generator=torch.Generator().manual_seed(2)).split([3, 2])
    z_j = torch.cat((z_j, z_i[:1] * 2))  # a pair at cosine 1
    expected = recbole_info_nce(z_i, z_j, 0.7, sim)
    assert model.info_nce(z_i, z_j).item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("contrast", ["us", "us_x"])
def test_contrastive_losses_are_recboles(cycle_root, contrast, one_thread):
    model, train, _ = build(cycle_root, contrast=contrast, lmd=0.3, lmd_sem=0.2, fredom=True, fredom_type="us")
    randomise(model)
    batch = first_batch(train)
    items, lengths = batch["item_id_list"], batch["item_length"]
    torch.manual_seed(4)
    with torch.no_grad():
        loss = model.calculate_loss(batch)
        torch.manual_seed(4)
        sem_items, sem_lengths = model.same_target(items, lengths, batch["item_id"])
        out, sem = recbole_output(model, items, lengths), recbole_output(model, sem_items, sem_lengths)
    expected = F.cross_entropy(out @ model.item_embedding.weight.T, batch["item_id"])
    if contrast == "us":
        expected = (
            expected + 0.3 * recbole_info_nce(out, out, 1.0, "dot") + 0.2 * recbole_info_nce(out, sem, 1.0, "dot")
        )
    else:  # the views: a second pass (equal without dropout) and the same-target history; fredom_type us: two terms
        expected = expected + 0.2 * recbole_info_nce(out, sem, 1.0, "dot")
        spectrum = [torch.fft.rfft(x, dim=1, norm="ortho") for x in (out, sem)]
        expected = expected + 0.1 * abs(spectrum[0] - spectrum[1]).flatten().mean()  # seq vs sem; seq vs aug is 0
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert not torch.equal(sem_items, items)


def toy_sampler():
    """Targets 1 (histories [5], [5], [6], [5, 6]), 2 ([7], [7]), 3 ([8, 9]); none of target 4."""
    values = np.array([5, 6, 7, 8, 9])
    ends = np.array([1, 1, 2, 2, 3, 3, 5])
    lengths = np.array([1, 1, 1, 2, 1, 1, 2])
    targets = np.array([1, 1, 1, 1, 2, 2, 3])
    order = np.array([6, 2, 0, 4, 1, 5, 3])  # the data set's rows in any order
    column = HistoryColumn(values, Windows(ends[order], lengths[order]), width=3)

    data = SimpleNamespace(inter_feat={"item_id": targets[order], "item_id_list": column})
    return SameTargetSampler(data, "item_id", "item_id_list", n_items=5)


@pytest.mark.parametrize("tries", [SameTargetSampler.MAX_TRIES, 0], ids=["rejection", "exact"])
def test_same_target_sampling_has_recboles_distribution(tries):
    sampler = toy_sampler()
    sampler.MAX_TRIES = tries
    assert sampler.single_history.tolist() == [True, False, True, True, True]
    rows = torch.tensor([[5, 0, 0], [6, 0, 0], [7, 0, 0], [8, 9, 0], [9, 0, 0]])
    n = 300
    torch.manual_seed(0)
    seqs, lengths = sampler(
        rows.repeat(n, 1), torch.tensor([1, 1, 1, 3, 1]).repeat(n), torch.tensor([1, 1, 2, 3, 4]).repeat(n)
    )
    seqs, lengths = seqs.view(n, 5, 3), lengths.view(n, 5)
    first = seqs[:, 0].tolist()  # [5] -> uniform over the differing [6] and [5, 6]
    assert set(map(tuple, first)) == {(6, 0, 0), (5, 6, 0)}
    assert first.count([6, 0, 0]) / n == pytest.approx(0.5, abs=0.1)
    second = seqs[:, 1].tolist()  # [6] -> [5] (two examples of three) or [5, 6]
    assert set(map(tuple, second)) == {(5, 0, 0), (5, 6, 0)}
    assert second.count([5, 0, 0]) / n == pytest.approx(2 / 3, abs=0.1)
    assert (seqs[:, 2] == torch.tensor([7, 0, 0])).all()  # one history for target 2: the same one
    assert (seqs[:, 3] == torch.tensor([8, 9, 0])).all() and (lengths[:, 3] == 2).all()
    assert (seqs[:, 4] == torch.tensor([9, 0, 0])).all() and (lengths[:, 4] == 1).all()  # no example: its own
    assert lengths[:, :3].tolist() == [[1 + (s == [5, 6, 0]) for s in r] for r in seqs[:, :3].tolist()]


def test_same_target_histories_come_from_the_training_examples(cycle_root, one_thread):
    model, train, _ = build(cycle_root, contrast="su")
    examples = train.dataset.inter_feat
    known = {
        (int(t), tuple(h), int(n))
        for t, h, n in zip(examples["item_id"], examples["item_id_list"].padded(), examples["item_length"], strict=True)
    }
    batch = first_batch(train)
    torch.manual_seed(0)
    seqs, lengths = model.same_target(batch["item_id_list"], batch["item_length"], batch["item_id"])
    for target, seq, length, own in zip(batch["item_id"], seqs, lengths, batch["item_id_list"], strict=True):
        assert (int(target), tuple(seq.tolist()), int(length)) in known
        assert not torch.equal(seq, own)  # every cycle target has several histories
    assert "same_target.values" not in model.state_dict()


def test_state_dict_has_recboles_keys(cycle_root):
    model, _, _ = build(cycle_root)
    state = model.state_dict()
    last = "item_encoder.layer.1.hybrid_attention.query_layer.weight"
    assert torch.equal(state["item_encoder.layer_ramp.hybrid_attention.query_layer.weight"], state[last])
    assert "item_encoder.layer.0.feed_forward.dense_1.weight" in state and "position_embedding.weight" in state


def test_settings_are_checked(cycle_root):
    with pytest.raises(ConfigError, match="topk_factor"):
        build(cycle_root, topk_factor=5)  # int(5 ln 8) = 10 delays of 8 positions: RecBole's topk fails
    with pytest.raises(ConfigError, match="hidden_size"):
        build(cycle_root, hidden_size=9)
    with pytest.raises(ConfigError, match="contrast"):
        cycle_config(cycle_root, "FEARec", contrast="all")
