"""S3Rec: self-supervised learning for sequential recommendation with mutual information maximisation (Zhou et
al., CIKM 2020), RecBole's formulation, trained in two stages by ``S3RecTrainer``.

``train_stage: pretrain``: four self-supervised losses on each training history, through a bidirectional
transformer — associated attribute prediction (AAP: each visible item's attributes from its output), masked item
prediction (MIP: a masked item against a sampled one), masked attribute prediction (MAP: a masked item's
attributes) and segment prediction (SP: a masked span against a span from elsewhere in the batch), summed with
``aap_weight`` ... ``sp_weight`` (sums over positions, not means, as RecBole). ``train_stage: finetune``: the
weights of ``pre_model_path`` loaded, then SASRec's causal next-item training.

Differences from RecBole, on purpose (docs/architecture.md): histories stay right-padded in pretraining, as in
fine-tuning (RecBole pads them on the left there, so the position embeddings of the two stages do not line up;
the authors' code pads on the left in both); a sampled negative item is never the mask token; a missing
attribute of a single-valued (token) field is no attribute (RecBole marks the last one); the draws are torch's,
vectorised (RecBole: Python's ``random`` per position).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recforge.config.types import Float, Int, Key, Str
from recforge.data.columns import SeqColumn
from recforge.errors import ConfigError
from recforge.models.pretrained import load_pretrained
from recforge.models.sequential.base import (
    SequentialRecommender,
    loss_type_key,
    normal_initialization,
    transformer_keys,
)
from recforge.models.sequential.layers import TransformerEncoder
from recforge.registry import register_model

NEGATIVE_DRAW_ROUNDS = 64  # redraws of negatives that fall into their history (each round keeps ~1 in n_items)


def attribute_table(dataset, field: str) -> torch.Tensor:
    """The items' attributes as a multi-hot [n_items, C] float table (C: the field's values without padding;
    row 0, the padding item, and items without a value are all zeros).

    Raises:
        ConfigError: ``field`` is not a token / token_seq column of the ``.item`` file.
    """
    item_feat = dataset.item_feat or {}
    if field not in item_feat or dataset.field2type.get(field) not in ("token", "token_seq"):
        raise ConfigError(
            f"config key 'item_attribute': {field!r} is not a token or token_seq column of the item features "
            f"(item columns: {', '.join(item_feat) or 'none loaded'}); load it (load_col: {{item: [item_id, "
            f"{field}]}}) or name another"
        )
    n_values = dataset.num(field) - 1
    column = item_feat[field]
    if isinstance(column, SeqColumn):
        rows = np.repeat(np.arange(len(column)), column.lengths)
        codes = np.asarray(column.values, dtype=np.int64)
    else:
        codes = np.asarray(column, dtype=np.int64)
        rows = np.arange(len(codes))
    present = codes > 0
    table = torch.zeros(len(column), n_values)
    table[torch.as_tensor(rows[present]), torch.as_tensor(codes[present] - 1)] = 1.0
    return table


@register_model
class S3Rec(SequentialRecommender):
    """A transformer over item + position embeddings (SASRec's) with four pretraining heads; see the module
    docstring for the two stages."""

    trainer = "S3RecTrainer"
    reads_item_features = True  # RecBole loads ml-100k's item columns for it (special_sequential_on_ml-100k.yaml)
    hyper_parameters = (
        *transformer_keys(0.5),
        Key("item_attribute", Str(), "class", "The .item column (token or token_seq) whose values are attributes."),
        Key("mask_ratio", Float(minimum=0.0, maximum=1.0), 0.2, "Share of history items masked in pretraining."),
        Key("aap_weight", Float(minimum=0.0), 0.2, "Weight of associated attribute prediction."),
        Key("mip_weight", Float(minimum=0.0), 1.0, "Weight of masked item prediction."),
        Key("map_weight", Float(minimum=0.0), 1.0, "Weight of masked attribute prediction."),
        Key("sp_weight", Float(minimum=0.0), 0.5, "Weight of segment prediction."),
        Key("train_stage", Str(choices=("pretrain", "finetune")), "pretrain", "pretrain, or finetune from a file."),
        Key("pretrain_epochs", Int(minimum=1), 500, "Epochs of the pretraining stage."),
        Key("save_step", Int(minimum=1), 50, "Pretraining saves its weights every save_step epochs and at the end."),
        Key("pre_model_path", Str(), "", "Fine-tuning: the pretrained file (<checkpoint_dir>/S3Rec-<data>-<n>.pth)."),
        loss_type_key(),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        hidden = config["hidden_size"]
        self.train_stage: str = config["train_stage"]
        self.mask_token = self.n_items  # one row past the real items
        self.mask_ratio = config["mask_ratio"]
        self.weights = tuple(config[k] for k in ("aap_weight", "mip_weight", "map_weight", "sp_weight"))
        if self.train_stage == "pretrain":  # RecBole sums the pretraining losses over the batch (Recommender docs)
            self.loss_reductions = {"calculate_loss": "sum"}
        self.register_buffer("attributes", attribute_table(dataset, config["item_attribute"]), persistent=False)
        self.item_embedding = nn.Embedding(self.n_items + 1, hidden, padding_idx=0)  # + the mask token
        self.position_embedding = nn.Embedding(self.max_seq_length, hidden)
        self.feature_embedding = nn.Embedding(self.attributes.shape[1], hidden)
        self.trm_encoder = TransformerEncoder.from_config(config)
        self.LayerNorm = nn.LayerNorm(hidden, eps=config["layer_norm_eps"])
        self.dropout = nn.Dropout(config["hidden_dropout_prob"])
        self.aap_norm, self.mip_norm, self.map_norm, self.sp_norm = (nn.Linear(hidden, hidden) for _ in range(4))
        self.apply(normal_initialization(config["initializer_range"]))
        if self.train_stage == "finetune":
            load_pretrained(self, config["pre_model_path"], dataset=config["dataset"])

    # -- the encoder -------------------------------------------------------------------------------
    def embed(self, item_seq: torch.Tensor) -> torch.Tensor:
        """dropout(LayerNorm(item + position embeddings)) [B, L, d]."""
        positions = torch.arange(item_seq.size(1), device=item_seq.device).unsqueeze(0)
        return self.dropout(self.LayerNorm(self.item_embedding(item_seq) + self.position_embedding(positions)))

    def encode(self, item_seq: torch.Tensor, bidirectional: bool = True) -> torch.Tensor:
        """Every position's output [B, L, d] (pretraining: bidirectional)."""
        mask = self.get_attention_mask(item_seq, bidirectional)
        return self.trm_encoder(self.embed(item_seq), mask, output_all_encoded_layers=False)[-1]

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """The causal output at each history's last item [B, d] (fine-tuning and prediction)."""
        return self._outputs_at(item_seq, item_seq_len - 1, bidirectional=False)

    def _outputs_at(self, item_seq: torch.Tensor, positions: torch.Tensor, bidirectional: bool) -> torch.Tensor:
        mask = self.get_attention_mask(item_seq, bidirectional)
        return self.trm_encoder.outputs_at(self.embed(item_seq), mask, positions.unsqueeze(1)).squeeze(1)

    def item_weight(self) -> torch.Tensor:
        return self.item_embedding.weight  # CE in fine-tuning scores the mask token's row too (RecBole's)

    def full_sort_predict(self, interaction) -> torch.Tensor:
        return self.sequence_output(interaction) @ self.item_embedding.weight[: self.n_items].T

    # -- pretraining -------------------------------------------------------------------------------
    def calculate_loss(self, interaction) -> torch.Tensor:
        if self.train_stage == "pretrain":
            return self.pretrain_loss(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])
        return super().calculate_loss(interaction)

    def pretrain_loss(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """``aap_weight * AAP + mip_weight * MIP + map_weight * MAP + sp_weight * SP`` of histories [B, L]."""
        batch = self.pretraining_batch(item_seq, item_seq_len)
        masked = batch["masked"]
        output = self.encode(batch["masked_items"])  # [B, L, d]
        attributes = self.attributes[item_seq]  # [B, L, C]
        features = self.feature_embedding.weight  # [C, d]
        visible = (item_seq > 0) & ~masked
        aap = F.binary_cross_entropy_with_logits(self.aap_norm(output) @ features.T, attributes, reduction="none")
        aap_loss = (aap * visible.unsqueeze(-1)).sum()
        mip = self.mip_norm(output)
        pos = torch.sigmoid((mip * self.item_embedding(item_seq)).sum(-1))
        neg = torch.sigmoid((mip * self.item_embedding(batch["negative_items"])).sum(-1))
        mip_loss = (F.softplus(neg - pos) * masked).sum()  # BCE with logits of (pos - neg) against 1
        mapped = F.binary_cross_entropy_with_logits(self.map_norm(output) @ features.T, attributes, reduction="none")
        map_loss = (mapped * masked.unsqueeze(-1)).sum()
        segments = torch.cat([batch["masked_segment"], batch["segment"], batch["negative_segment"]])
        last = (item_seq_len - 1).repeat(3)
        context, segment, negative = self._outputs_at(segments, last, bidirectional=True).chunk(3)
        context = self.sp_norm(context)
        pos_segment = torch.sigmoid((context * segment).sum(-1))
        neg_segment = torch.sigmoid((context * negative).sum(-1))
        sp_loss = F.softplus(neg_segment - pos_segment).sum()
        aap_w, mip_w, map_w, sp_w = self.weights
        return aap_w * aap_loss + mip_w * mip_loss + map_w * map_loss + sp_w * sp_loss

    def pretraining_batch(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> dict[str, torch.Tensor]:
        """The inputs of the four losses, drawn with torch's generator; every tensor [B, L], right-padded:

        - ``masked`` (bool): positions replaced by the mask token (each real item with probability
          ``mask_ratio``); ``masked_items``: the history with them replaced;
        - ``negative_items``: at masked positions an item drawn uniformly among the real items not in the row's
          history (elsewhere the history's item);
        - a span per history of length >= 2 (length uniform in 1..len // 2, start uniform): ``masked_segment``
          (the history with the span masked), ``segment`` (the span, the mask token elsewhere) and
          ``negative_segment`` (a span of the same length from the batch's histories concatenated in row order,
          the mask token elsewhere); a history of length 1 is all three itself.
        """
        device = item_seq.device
        rows, length = item_seq.shape
        real = torch.arange(length, device=device).unsqueeze(0) < item_seq_len.unsqueeze(1)
        masked = (torch.rand(rows, length, device=device) < self.mask_ratio) & real
        mask = torch.full_like(item_seq, self.mask_token)
        negatives = self._negatives(item_seq, masked)
        spans = item_seq_len >= 2
        span_length = (torch.rand(rows, device=device) * (item_seq_len // 2)).long() + 1
        start = (torch.rand(rows, device=device) * (item_seq_len - span_length + 1)).long()
        concatenated = item_seq[real]
        negative_start = (torch.rand(rows, device=device) * (len(concatenated) - span_length + 1)).long()
        offset = torch.arange(length, device=device).unsqueeze(0) - start.unsqueeze(1)
        in_span = (offset >= 0) & (offset < span_length.unsqueeze(1)) & spans.unsqueeze(1)
        source = (negative_start.unsqueeze(1) + offset).clamp(0, len(concatenated) - 1)
        padding = torch.zeros_like(item_seq)
        outside = torch.where(spans.unsqueeze(1), mask, item_seq)
        return {
            "masked": masked,
            "masked_items": torch.where(masked, mask, item_seq),
            "negative_items": torch.where(masked, negatives, item_seq),
            "masked_segment": torch.where(in_span, mask, item_seq),
            "segment": torch.where(real, torch.where(in_span, item_seq, outside), padding),
            "negative_segment": torch.where(real, torch.where(in_span, concatenated[source], outside), padding),
        }

    def _negatives(self, item_seq: torch.Tensor, wanted: torch.Tensor) -> torch.Tensor:
        """[B, L]: at ``wanted`` positions a real item (1 .. n_items - 1) not in the row's history."""
        draws = torch.randint(1, self.n_items, item_seq.shape, device=item_seq.device)
        for _ in range(NEGATIVE_DRAW_ROUNDS):
            clash = (draws.unsqueeze(-1) == item_seq.unsqueeze(1)).any(-1) & wanted
            if not clash.any():
                break
            draws = torch.where(clash, torch.randint_like(draws, 1, self.n_items), draws)
        return draws
