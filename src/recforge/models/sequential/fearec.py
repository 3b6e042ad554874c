"""FEARec: frequency enhanced hybrid attention network for sequential recommendation (Du et al., SIGIR 2023),
RecBole's formulation.

SASRec's input (item + position embeddings, LayerNorm, dropout) passes through ``FEAEncoder`` (frequency-domain
auto-correlation attention, one band of frequencies per layer; see ``fearec_layers``); the output at the last item
scores every item by a dot product with its embedding. With ``contrast`` the CE/BPR loss gains InfoNCE terms
between the representation and a second dropout pass of the same history (``un``), a history of another training
example with the same target (``su``), both (``us``), or between those two views (``us_x``, with ``fredom`` also
an L1 distance of their spectra over the hidden axis).

Same-target histories: RecBole looks them up in its training data set per batch row, in Python. Here the model keeps
the training examples' history windows (the interaction array and each example's end and length, not an
[examples x L] copy) grouped by target when it is built, and ``SameTargetSampler`` draws for a whole batch at once
from torch's generator, with RecBole's distribution: uniform over the examples with the row's target whose history
differs from the row's, or any of them where none differs (see ``SameTargetSampler``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from recforge.config.types import Bool, Float, Int, Key, Optional, Str
from recforge.models.sequential.base import (
    SequentialRecommender,
    loss_type_key,
    normal_initialization,
    transformer_keys,
)
from recforge.models.sequential.fearec_layers import FEAEncoder
from recforge.registry import register_model

CONTRASTS = ("us", "un", "su", "us_x")


def gather_histories(values: torch.Tensor, ends: torch.Tensor, lengths: torch.Tensor, width: int) -> torch.Tensor:
    """The windows ``values[ends[i] - lengths[i]:ends[i]]`` as [n, width], left-aligned and padded with 0."""
    offsets = torch.arange(width, device=values.device)
    inside = offsets < lengths.unsqueeze(1)
    positions = torch.where(inside, (ends - lengths).unsqueeze(1) + offsets, 0)
    return torch.where(inside, values[positions], 0)


class SameTargetSampler(nn.Module):
    """For each batch row, a training example with the same target and another history (RecBole's ``sem_aug``).

    Built from the training split: the history windows of its examples sorted by target (``starts[t]:starts[t+1]``
    are target t's), and ``single_history[t]``, whether all of target t's examples share one history. A row draws
    uniformly among its target's examples and redraws while the draw's history equals the row's, which is uniform
    over the differing ones as RecBole's sampling without replacement; targets with one history keep the first
    draw (RecBole's fallback, the same history). Rows still equal after ``MAX_TRIES`` draws are settled exactly, one
    by one. A target with no training example (RecBole fails) keeps the row's own history.
    """

    MAX_TRIES = 16
    CHUNK = 1 << 16

    def __init__(self, dataset, item_field: str, list_field: str, n_items: int) -> None:
        super().__init__()
        lists = dataset.inter_feat[list_field]
        targets = torch.as_tensor(dataset.inter_feat[item_field], dtype=torch.long)
        order = torch.sort(targets, stable=True)[1]
        targets = targets[order]
        self.register_buffer("values", torch.as_tensor(lists.values, dtype=torch.long), persistent=False)
        self.register_buffer("ends", torch.as_tensor(lists.windows.ends, dtype=torch.long)[order], persistent=False)
        lengths = torch.as_tensor(lists.windows.lengths, dtype=torch.long)[order]
        self.register_buffer("lengths", lengths, persistent=False)
        starts = torch.searchsorted(targets, torch.arange(n_items + 1))
        self.register_buffer("starts", starts, persistent=False)
        first = starts[targets]  # each example's block's first example
        differs = torch.cat(
            [
                (self.histories(rows, lists.width) != self.histories(first[rows], lists.width)).any(dim=1)
                for rows in torch.arange(len(targets)).split(self.CHUNK)
            ]
        )
        single = torch.bincount(targets[differs], minlength=n_items) == 0
        self.register_buffer("single_history", single, persistent=False)

    def histories(self, examples: torch.Tensor, width: int) -> torch.Tensor:
        """[n] example positions (in target order) -> their histories [n, width]."""
        return gather_histories(self.values, self.ends[examples], self.lengths[examples], width)

    @staticmethod
    def _draw(start: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
        uniform = torch.rand(len(start), dtype=torch.float64, device=start.device)
        return start + torch.minimum((uniform * count).long(), count - 1)

    def forward(
        self, item_seq: torch.Tensor, item_seq_len: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, L], [B], [B] -> the sampled histories [B, L] and their lengths [B]."""
        width = item_seq.size(1)
        start = self.starts[targets]
        count = self.starts[targets + 1] - start
        found = torch.nonzero(count > 0).squeeze(1)
        pick = torch.zeros_like(targets)
        pick[found] = self._draw(start[found], count[found])
        pending = found[~self.single_history[targets[found]]]
        for _ in range(self.MAX_TRIES):
            same = (self.histories(pick[pending], width) == item_seq[pending]).all(dim=1)
            pending = pending[same]
            if len(pending) == 0:
                break
            pick[pending] = self._draw(start[pending], count[pending])
        for row in pending.tolist():  # settled exactly: uniform over the target's differing histories
            block = torch.arange(int(start[row]), int(start[row] + count[row]), device=targets.device)
            differing = block[(self.histories(block, width) != item_seq[row]).any(dim=1)]
            pick[row] = differing[torch.randint(len(differing), (1,), device=targets.device)]
        missing = count == 0
        seqs = torch.where(missing.unsqueeze(1), item_seq, self.histories(pick, width))
        return seqs, torch.where(missing, item_seq_len, self.lengths[pick])


@register_model
class FEARec(SequentialRecommender):
    """Frequency-domain hybrid attention over item + position embeddings; contrastive terms with ``contrast``."""

    hyper_parameters = (
        *transformer_keys(0.5),
        loss_type_key(),
        Key("lmd", Float(minimum=0.0), 0.1, "Weight of the InfoNCE term with a second dropout pass (un, us)."),
        Key("lmd_sem", Float(minimum=0.0), 0.1, "Weight of the InfoNCE term with a same-target view (su, us, us_x)."),
        Key("global_ratio", Float(minimum=0.0, maximum=1.0, exclusive_minimum=True), 1.0, "Share of frequencies."),
        Key("dual_domain", Bool(), False, "Mix a time-domain self-attention into each layer."),
        Key("std", Bool(), False, "dual_domain: limit the time-domain attention to the layer's frequency band."),
        Key("spatial_ratio", Float(minimum=0.0, maximum=1.0), 0.0, "dual_domain: weight of the time-domain attention."),
        Key("fredom", Bool(), False, "contrast us_x: add L1 distances of the views' spectra."),
        Key("fredom_type", Optional(Str(choices=CONTRASTS)), None, "fredom: which views' spectra are compared."),
        Key("topk_factor", Int(minimum=1), 1, "The int(topk_factor * ln L) most correlated delays are aggregated."),
        Key("contrast", Optional(Str(choices=CONTRASTS)), None, "InfoNCE terms: un, su, us, us_x, or none."),
        Key("tau", Float(minimum=0.0, exclusive_minimum=True), 1.0, "InfoNCE temperature."),
        Key("sim", Str(choices=("dot", "cos")), "dot", "InfoNCE similarity."),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        hidden = config["hidden_size"]
        self.lmd, self.lmd_sem = config["lmd"], config["lmd_sem"]
        self.ssl, self.tau, self.sim = config["contrast"], config["tau"], config["sim"]
        self.fredom, self.fredom_type = config["fredom"], config["fredom_type"]
        self.item_embedding = nn.Embedding(self.n_items, hidden, padding_idx=0)
        self.position_embedding = nn.Embedding(self.max_seq_length, hidden)
        self.item_encoder = FEAEncoder(config)
        self.LayerNorm = nn.LayerNorm(hidden, eps=config["layer_norm_eps"])
        self.dropout = nn.Dropout(config["hidden_dropout_prob"])
        if self.ssl in ("us", "su", "us_x"):
            self.same_target = SameTargetSampler(dataset, self.ITEM_ID, self.ITEM_SEQ, self.n_items)
        self.apply(normal_initialization(config["initializer_range"]))

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """[B, L], [B] -> the output at each history's last item [B, d]."""
        positions = torch.arange(item_seq.size(1), device=item_seq.device).unsqueeze(0)
        hidden = self.dropout(self.LayerNorm(self.item_embedding(item_seq) + self.position_embedding(positions)))
        mask = self.get_attention_mask(item_seq)
        output = self.item_encoder(hidden, mask, output_all_encoded_layers=False)[-1]
        return self.gather_indexes(output, item_seq_len - 1)

    def info_nce(self, z_i: torch.Tensor, z_j: torch.Tensor) -> torch.Tensor:
        """RecBole's InfoNCE of two views [B, d]: each of the 2B vectors against its pair (first logit) and the
        2B - 2 others, cross-entropy averaged over the 2B rows."""
        batch = len(z_i)
        z = torch.cat((z_i, z_j))
        if self.sim == "cos":
            z = F.normalize(z, dim=-1)
        sim = z @ z.T / self.tau
        pair = torch.arange(2 * batch, device=z.device).roll(batch)  # row i's pair: i + B mod 2B
        positives = sim.gather(1, pair.unsqueeze(1))
        others = torch.ones_like(sim, dtype=torch.bool)
        others.fill_diagonal_(False)
        others[torch.arange(2 * batch, device=z.device), pair] = False
        logits = torch.cat((positives, sim[others].view(2 * batch, -1)), dim=1)
        return F.cross_entropy(logits, torch.zeros(2 * batch, dtype=torch.long, device=z.device))

    def calculate_loss(self, interaction) -> torch.Tensor:
        item_seq, item_seq_len = interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN]
        if self.ssl in ("us", "su", "us_x"):
            sem_seq, sem_len = self.same_target(item_seq, item_seq_len, interaction[self.ITEM_ID])
        seq_output = self.forward(item_seq, item_seq_len)
        loss = self.output_loss(seq_output, interaction)
        if self.ssl in ("us", "un"):
            loss = loss + self.lmd * self.info_nce(seq_output, self.forward(item_seq, item_seq_len))
        if self.ssl in ("us", "su"):
            loss = loss + self.lmd_sem * self.info_nce(seq_output, self.forward(sem_seq, sem_len))
        if self.ssl == "us_x":
            aug_output = self.forward(item_seq, item_seq_len)
            sem_output = self.forward(sem_seq, sem_len)
            loss = loss + self.lmd_sem * self.info_nce(aug_output, sem_output)
            if self.fredom:
                loss = loss + self.spectrum_loss(seq_output, aug_output, sem_output)
        return loss

    def spectrum_loss(self, seq_output, aug_output, sem_output) -> torch.Tensor:
        """RecBole's ``fredom`` terms: 0.1 x mean |rFFT(a) - rFFT(b)| over the hidden axis, for the pairs of views
        ``fredom_type`` names."""
        seq_f, aug_f, sem_f = (torch.fft.rfft(x, dim=1, norm="ortho") for x in (seq_output, aug_output, sem_output))
        loss = seq_output.new_zeros(())
        if self.fredom_type in ("us", "un"):
            loss = loss + 0.1 * (seq_f - aug_f).abs().mean()
        if self.fredom_type in ("us", "su"):
            loss = loss + 0.1 * (seq_f - sem_f).abs().mean()
        if self.fredom_type == "us_x":
            loss = loss + 0.1 * (aug_f - sem_f).abs().mean()
        return loss
