"""BERT4Rec: sequential recommendation with bidirectional encoder representations from transformers (Sun et al.,
CIKM 2019), RecBole's formulation.

Training is the cloze task of the ``mask_itemseq`` transform (``recforge.data.transform``): random items of each
history are replaced by the mask token (id ``n_items``) and predicted from both sides; with probability
``ft_ratio`` a batch masks only each history's last item. Prediction appends the mask token RecBole's way: the
history shifted left by one, the mask at position ``length - 1`` (so a history shorter than
``MAX_ITEM_LIST_LENGTH`` loses its first item, as in RecBole), and the output there scores the items.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from recforge.config.keys import TRANSFORMS
from recforge.config.types import Float, Key, Optional, Str
from recforge.models.sequential.base import (
    SequentialRecommender,
    loss_type_key,
    normal_initialization,
    transformer_keys,
)
from recforge.models.sequential.layers import TransformerEncoder
from recforge.registry import register_model


@register_model
class BERT4Rec(SequentialRecommender):
    """A bidirectional transformer over item + position embeddings, an output feed-forward (GELU, LayerNorm) and
    scores ``<h, e_i> + b_i`` with the input item table (the mask token's row excluded)."""

    hyper_parameters = (
        *transformer_keys(0.2),
        Key(
            "mask_ratio", Float(minimum=0.0, maximum=1.0), 0.2, "Share of a history's items masked for the cloze task."
        ),
        Key("ft_ratio", Float(minimum=0.0, maximum=1.0), 0.5, "Share of batches that mask only the last item."),
        Key(
            "transform",
            Optional(Str(choices=TRANSFORMS)),
            "mask_itemseq",
            "The batch transform; BERT4Rec trains on mask_itemseq's masked histories.",
        ),
        loss_type_key(),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        hidden, eps = config["hidden_size"], config["layer_norm_eps"]
        self.mask_token = self.n_items
        self.mask_item_length = int(config["mask_ratio"] * self.max_seq_length)
        self.MASK_ITEM_SEQ = "Mask_" + self.ITEM_SEQ
        self.POS_ITEMS = "Pos_" + self.ITEM_ID
        self.NEG_ITEMS = "Neg_" + self.ITEM_ID
        self.MASK_INDEX = "MASK_INDEX"
        self.item_embedding = nn.Embedding(self.n_items + 1, hidden, padding_idx=0)  # + the mask token
        self.position_embedding = nn.Embedding(self.max_seq_length, hidden)
        self.trm_encoder = TransformerEncoder.from_config(config)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)
        self.dropout = nn.Dropout(config["hidden_dropout_prob"])
        self.output_ffn = nn.Linear(hidden, hidden)
        self.output_gelu = nn.GELU()
        self.output_ln = nn.LayerNorm(hidden, eps=eps)
        self.output_bias = nn.Parameter(torch.zeros(self.n_items))
        self.apply(normal_initialization(config["initializer_range"]))

    def item_weight(self) -> torch.Tensor:
        return self.item_embedding.weight[: self.n_items]

    def reconstruct_test_data(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """[B, L]: the history shifted left by one, the mask token at position ``length - 1`` (RecBole's)."""
        shifted = torch.cat([item_seq[:, 1:], torch.zeros_like(item_seq[:, :1])], dim=1)
        shifted[torch.arange(len(item_seq), device=item_seq.device), item_seq_len - 1] = self.mask_token
        return shifted

    def forward(self, item_seq: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """Every position's output [B, L, d], or with ``positions`` [B, P] those positions' [B, P, d] (the last
        layer and the output block then run there only)."""
        steps = torch.arange(item_seq.size(1), device=item_seq.device).unsqueeze(0)
        hidden = self.dropout(self.LayerNorm(self.item_embedding(item_seq) + self.position_embedding(steps)))
        mask = self.get_attention_mask(item_seq, bidirectional=True)
        if positions is None:
            output = self.trm_encoder(hidden, mask, output_all_encoded_layers=False)[-1]
        else:
            output = self.trm_encoder.outputs_at(hidden, mask, positions)
        return self.output_ln(self.output_gelu(self.output_ffn(output)))

    def calculate_loss(self, interaction) -> torch.Tensor:
        """The masked items' loss, averaged over the masked positions (``MASK_INDEX`` > 0, RecBole's rule: an item
        masked at position 0 is not counted)."""
        masked_index = interaction[self.MASK_INDEX]  # [B, M]
        output = self.forward(interaction[self.MASK_ITEM_SEQ], masked_index)  # [B, M, d]
        pos_items = interaction[self.POS_ITEMS]
        targets = (masked_index > 0).float()
        if self.loss_type == "BPR":
            neg_items = interaction[self.NEG_ITEMS]
            pos = (output * self.item_embedding(pos_items)).sum(-1) + self.output_bias[pos_items]
            neg = (output * self.item_embedding(neg_items)).sum(-1) + self.output_bias[neg_items]
            return -(torch.log(1e-14 + torch.sigmoid(pos - neg)) * targets).sum() / targets.sum()
        logits = output @ self.item_weight().T + self.output_bias  # [B, M, n_items]
        losses = F.cross_entropy(logits.float().view(-1, self.n_items), pos_items.view(-1), reduction="none")
        return (losses * targets.view(-1)).sum() / targets.sum()

    def sequence_output(self, interaction) -> torch.Tensor:
        item_seq, item_seq_len = interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN]
        last = (item_seq_len - 1).unsqueeze(1)
        return self.forward(self.reconstruct_test_data(item_seq, item_seq_len), last).squeeze(1)

    def predict(self, interaction) -> torch.Tensor:
        items = interaction[self.ITEM_ID]
        return (self.sequence_output(interaction) * self.item_embedding(items)).sum(-1) + self.output_bias[items]

    def full_sort_predict(self, interaction) -> torch.Tensor:
        return self.sequence_output(interaction) @ self.item_weight().T + self.output_bias
