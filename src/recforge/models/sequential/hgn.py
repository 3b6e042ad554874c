"""HGN: hierarchical gating networks for sequential recommendation (Ma et al., KDD 2019), RecBole's formulation.

A feature gate ``sigmoid(W1 e_t + W2 u + b)`` scales each history item's embedding, an instance gate
``sigmoid(w3 . g_t + (W4 u)_t)`` weighs the gated items, which are pooled (a weighted average, or the item with the
highest gate); the representation ``u + pooled + sum_t e_t`` scores every item by a dot product with a second item
table, ``item_embedding_for_prediction``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from recforge.config.types import Float, Int, Key, ListOf, Str
from recforge.errors import ConfigError
from recforge.models.losses import bpr_loss
from recforge.models.sequential.base import SequentialRecommender, loss_type_key
from recforge.registry import register_model


@register_model
class HGN(SequentialRecommender):
    """Feature and instance gating of the history's item embeddings, personalised by the user's embedding
    (RecBole reads every position of the history, padding included)."""

    hyper_parameters = (
        Key("embedding_size", Int(minimum=1), 64, "Dimension of user and item embeddings."),
        loss_type_key(),
        Key(
            "pooling_type",
            Str(choices=("average", "max")),
            "average",
            "Pooling of the instance-gated items: their gate-weighted average, or the item with the highest gate.",
        ),
        Key(
            "reg_weight",
            ListOf(Float(minimum=0.0)),
            [0.0, 0.0],
            "L2 weights [of the four gate matrices, of the batch's user, target and history embeddings].",
        ),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        if len(config["reg_weight"]) != 2:
            raise ConfigError(f"config key 'reg_weight': {config['reg_weight']!r} is not a list of 2 numbers")
        self.embedding_size = size = config["embedding_size"]
        self.reg_weight = list(config["reg_weight"])
        self.pool_type = config["pooling_type"]
        self.item_embedding = nn.Embedding(self.n_items, size, padding_idx=0)
        self.user_embedding = nn.Embedding(self.n_users, size)
        self.w1 = nn.Linear(size, size)
        self.w2 = nn.Linear(size, size)
        self.b = nn.Parameter(torch.zeros(size))
        self.w3 = nn.Linear(size, 1, bias=False)
        self.w4 = nn.Linear(size, self.max_seq_length, bias=False)
        self.item_embedding_for_prediction = nn.Embedding(self.n_items, size)
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        """RecBole's: embeddings normal(0, 1 / d) (the padding row too), linear weights Xavier-uniform, biases 0."""
        if isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight.data, 0.0, 1 / self.embedding_size)
        elif isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight.data)
            if module.bias is not None:
                nn.init.constant_(module.bias.data, 0)

    def feature_gating(self, seq_item_embedding: torch.Tensor, user_embedding: torch.Tensor) -> torch.Tensor:
        """``e_t * sigmoid(W1 e_t + W2 u + b)``: [B, L, d], [B, d] -> [B, L, d]."""
        gate = torch.sigmoid(self.w1(seq_item_embedding) + self.w2(user_embedding).unsqueeze(1) + self.b)
        return seq_item_embedding * gate

    def instance_gating(self, user_item: torch.Tensor, user_embedding: torch.Tensor) -> torch.Tensor:
        """Pool the gated items [B, L, d] by their instance gates ``sigmoid(w3 . g_t + (W4 u)_t)`` -> [B, d]."""
        instance_score = torch.sigmoid(self.w3(user_item) + self.w4(user_embedding).unsqueeze(2)).squeeze(-1)
        output = instance_score.unsqueeze(2) * user_item
        if self.pool_type == "average":
            return output.sum(dim=1) / instance_score.sum(dim=1).unsqueeze(1)
        return self.gather_indexes(output, instance_score.argmax(dim=1))

    def forward(self, item_seq: torch.Tensor, user: torch.Tensor) -> torch.Tensor:
        """The representation [B, d] of histories [B, L] (L = MAX_ITEM_LIST_LENGTH) of the users [B]."""
        seq_item_embedding = self.item_embedding(item_seq)
        user_embedding = self.user_embedding(user)
        gated = self.instance_gating(self.feature_gating(seq_item_embedding, user_embedding), user_embedding)
        return user_embedding + gated + seq_item_embedding.sum(dim=1)

    def sequence_output(self, interaction) -> torch.Tensor:
        return self.forward(interaction[self.ITEM_SEQ], interaction[self.USER_ID])

    def item_weight(self) -> torch.Tensor:
        return self.item_embedding_for_prediction.weight

    def reg_loss(self, user_embedding: torch.Tensor, item_embedding: torch.Tensor, seq_item_embedding: torch.Tensor):
        """RecBole's (unsquared) L2 norms of the gate matrices and of the batch's user / target / history
        embeddings."""
        reg_1, reg_2 = self.reg_weight
        matrices = sum(reg_1 * torch.norm(w.weight, p=2) for w in (self.w1, self.w2, self.w3, self.w4))
        embeddings = (user_embedding, item_embedding, seq_item_embedding)
        return matrices + sum(reg_2 * torch.norm(e, p=2) for e in embeddings)

    def calculate_loss(self, interaction) -> torch.Tensor:
        seq_output = self.sequence_output(interaction)
        pos_items = interaction[self.POS_ITEM_ID]
        pos_items_emb = self.item_embedding_for_prediction(pos_items)
        if self.loss_type == "BPR":
            # RecBole scores the negative with the history table, item_embedding (kept as it is)
            neg_items_emb = self.item_embedding(interaction[self.NEG_ITEM_ID])
            loss = bpr_loss((seq_output * pos_items_emb).sum(-1), (seq_output * neg_items_emb).sum(-1))
        else:
            loss = F.cross_entropy(seq_output @ self.item_embedding_for_prediction.weight.T, pos_items)
        seq_item_embedding = self.item_embedding(interaction[self.ITEM_SEQ])
        user_embedding = self.user_embedding(interaction[self.USER_ID])
        return loss + self.reg_loss(user_embedding, pos_items_emb, seq_item_embedding)
