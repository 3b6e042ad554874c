"""DIN: deep interest network for click-through rate prediction (Zhou et al., KDD 2018), RecBole's formulation for
sequential data: the history's item features pooled by their attention to the target item, then a Dice MLP.

Training is pointwise as RecBole's: each example's target is labelled 1 and a sampled negative item (the loader's
``train_neg_sample_args``, one uniform item other than the target) with the same history 0, in one batch of 2B rows
(the MLP's batch normalisation sees both); BCE with logits. ``predict`` returns probabilities. RecBole evaluates DIN
on the target against 100 sampled items with AUC and LogLoss (its ``sequential_DIN.yaml``, applied here too).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from recforge.config.types import Float, Int, Key, ListOf, Str
from recforge.models.context.fields import mlp_layers
from recforge.models.init import xavier_normal_initialization
from recforge.models.sequential.base import SequentialRecommender
from recforge.models.sequential.click_layers import FeatureTable, SequenceAttention
from recforge.registry import register_model

FULL_SORT_ROWS = 1 << 16  # (example, item) rows scored at once by full_sort_predict


def click_keys() -> tuple[Key, ...]:
    """The keys DIN and DIEN share (RecBole's defaults)."""
    return (
        Key("embedding_size", Int(minimum=1), 10, "Dimension d of every feature's embedding."),
        Key("mlp_hidden_size", ListOf(Int(minimum=1), min_length=1), [256, 256, 256], "Hidden units of the MLPs."),
        Key("dropout_prob", Float(minimum=0.0, maximum=1.0), 0.0, "Dropout before each layer of the prediction MLP."),
        Key("pooling_mode", Str(choices=("mean", "sum", "max")), "mean", "Pooling of token_seq features."),
    )


class ClickThroughRecommender(SequentialRecommender):
    """Base of DIN and DIEN: pointwise training on (target: 1, sampled item: 0), probabilities as scores."""

    click_through = True  # RecBole's sequential_DIN.yaml: uni100, AUC and LogLoss
    needs_negatives = True  # trains on the loader's sampled negative items

    def logits(self, interaction, items: torch.Tensor) -> torch.Tensor:
        """[B'] logits of ``items`` [B'] after each row's history (B' a multiple of the batch's rows)."""
        raise NotImplementedError

    def pointwise_targets(self, interaction) -> tuple[torch.Tensor, torch.Tensor]:
        """``(items [2B], labels [2B])``: the targets labelled 1, then the sampled items labelled 0."""
        items = torch.cat([interaction[self.POS_ITEM_ID], interaction[self.NEG_ITEM_ID]])
        labels = torch.zeros(len(items), device=items.device)
        labels[: len(interaction)] = 1.0
        return items, labels

    def calculate_loss(self, interaction) -> torch.Tensor:
        items, labels = self.pointwise_targets(interaction)
        return F.binary_cross_entropy_with_logits(self.logits(interaction, items), labels)

    def predict(self, interaction) -> torch.Tensor:
        return torch.sigmoid(self.logits(interaction, interaction[self.ITEM_ID]))

    def full_sort_predict(self, interaction) -> torch.Tensor:
        """[B, n_items] probabilities of every item (the model run on B x n_items rows, in blocks: costly; RecBole's
        DIN and DIEN have no full ranking)."""
        rows, n_items = len(interaction), self.n_items
        step = max(1, FULL_SORT_ROWS // max(rows, 1))
        device = interaction[self.ITEM_SEQ].device
        blocks = []
        for start in range(0, n_items, step):
            items = torch.arange(start, min(start + step, n_items), device=device)
            repeated = items.repeat_interleave(rows)  # block-major: item j for every row, then item j + 1 ...
            blocks.append(torch.sigmoid(self.logits(interaction, repeated)).view(len(items), rows).T)
        return torch.cat(blocks, dim=1)

    @staticmethod
    def repeat_rows(values: torch.Tensor, times: int) -> torch.Tensor:
        return values.repeat(times, *([1] * (values.dim() - 1)))


@register_model
class DIN(ClickThroughRecommender):
    """The history's item features (ids and ``.item`` columns) pooled with unnormalised attention weights to the
    target's (RecBole's ``SequenceAttLayer``: sigmoid MLP, no softmax, divided by sqrt(H)), then
    ``MLP_dice([pooled, target, pooled * target])`` -> a logit."""

    hyper_parameters = click_keys()

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        size, hidden = config["embedding_size"], list(config["mlp_hidden_size"])
        self.item_table = FeatureTable(dataset, config, "item", size, config["pooling_mode"])
        width = self.item_table.num_fields * size
        self.attention = SequenceAttention([4 * width, *hidden], "sigmoid", softmax=False, return_weights=False)
        self.dnn_mlp_layers = mlp_layers([3 * width, *hidden], config["dropout_prob"], "dice", batch_norm=True)
        self.dnn_predict_layers = nn.Linear(hidden[-1], 1)
        self.apply(xavier_normal_initialization)

    def logits(self, interaction, items: torch.Tensor) -> torch.Tensor:
        times = len(items) // len(interaction)
        history = self.item_table(interaction[self.ITEM_SEQ])  # [B, T, H], once for every repetition
        history = self.repeat_rows(history, times)
        lengths = self.repeat_rows(interaction[self.ITEM_SEQ_LEN], times)
        target = self.item_table(items)
        pooled = self.attention(target, history, lengths).squeeze(1)
        features = torch.cat([pooled, target, pooled * target], -1)
        return self.dnn_predict_layers(self.dnn_mlp_layers(features)).squeeze(-1)
