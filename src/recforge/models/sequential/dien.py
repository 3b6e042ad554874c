"""DIEN: deep interest evolution network for click-through rate prediction (Zhou et al., AAAI 2019), RecBole's
formulation: a GRU extracts the interests along the history (with an auxiliary loss telling each next clicked item
from a negative one, ``neg_item_id_list`` of ``DIENDataset``), an attention-gated GRU (``gru_type``: AUGRU by
default) lets them evolve towards the target, and a Dice MLP reads [evolved interest, target, user features].

Training as DIN's (target 1, a sampled item 0, BCE with logits) plus ``alpha`` x the auxiliary loss. The extractor
runs once per example: RecBole runs it on both copies of each history, whose mean is the same.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from recforge.config.types import Float, Key, Str
from recforge.models.context.fields import mlp_layers
from recforge.models.init import xavier_normal_initialization
from recforge.models.sequential.click_layers import FeatureTable, InterestEvolving, InterestExtractor
from recforge.models.sequential.din import ClickThroughRecommender, click_keys
from recforge.registry import register_model


@register_model
class DIEN(ClickThroughRecommender):
    """See the module docstring."""

    negative_item_history = True  # RecBole's DIENDataset: a negative item per history position
    hyper_parameters = (
        *click_keys(),
        Key("gru_type", Str(choices=("GRU", "AIGRU", "AGRU", "AUGRU")), "AUGRU", "The interest evolving layer."),
        Key("alpha", Float(minimum=0.0), 1.0, "Weight of the auxiliary loss."),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        size, hidden = config["embedding_size"], list(config["mlp_hidden_size"])
        self.NEG_ITEM_SEQ = config["NEG_PREFIX"] + self.ITEM_SEQ
        self.alpha = config["alpha"]
        self.item_table = FeatureTable(dataset, config, "item", size, config["pooling_mode"])
        self.user_table = FeatureTable(dataset, config, "user", size, config["pooling_mode"])
        width, user_width = self.item_table.num_fields * size, self.user_table.num_fields * size
        self.interset_extractor = InterestExtractor(width, [2 * width, *hidden, 1])  # RecBole's spelling
        self.interest_evolution = InterestEvolving(width, [4 * width, *hidden], config["gru_type"])
        self.dnn_mlp_layers = mlp_layers(
            [2 * width + user_width, *hidden], config["dropout_prob"], "dice", batch_norm=True
        )
        self.dnn_predict_layer = nn.Linear(hidden[-1], 1)
        self.apply(xavier_normal_initialization)  # the GRUs and the attention-gated cells keep their own

    def interests(self, interaction) -> tuple[torch.Tensor, torch.Tensor]:
        """``(extracted interests [B, T, H], auxiliary loss)`` of the batch's histories."""
        history = self.item_table(interaction[self.ITEM_SEQ])
        negatives = self.item_table(interaction[self.NEG_ITEM_SEQ])
        return self.interset_extractor(history, interaction[self.ITEM_SEQ_LEN], negatives)

    def logits(self, interaction, items: torch.Tensor, interests: torch.Tensor | None = None) -> torch.Tensor:
        if interests is None:
            interests = self.interests(interaction)[0]
        times = len(items) // len(interaction)
        target = self.item_table(items)
        lengths = self.repeat_rows(interaction[self.ITEM_SEQ_LEN], times)
        evolved = self.interest_evolution(target, self.repeat_rows(interests, times), lengths)
        users = self.repeat_rows(self.user_table(interaction[self.USER_ID]), times)
        return self.dnn_predict_layer(self.dnn_mlp_layers(torch.cat([evolved, target, users], -1))).squeeze(-1)

    def calculate_loss(self, interaction) -> torch.Tensor:
        interests, auxiliary = self.interests(interaction)
        items, labels = self.pointwise_targets(interaction)
        loss = F.binary_cross_entropy_with_logits(self.logits(interaction, items, interests), labels)
        return loss + self.alpha * auxiliary
