"""SHAN: sequential recommendation with a hierarchical attention network (Ying et al., IJCAI 2018), RecBole's
formulation.

The history is read right-aligned (the ``inverse_itemseq`` transform's ``Inverse_item_id_list``). A first
user-guided attention pools the whole history into a long-term vector; a second one pools that vector together
with the embeddings of the last ``short_item_length`` items into the representation that scores every item by a
dot product with its embedding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from recforge.config.keys import TRANSFORMS
from recforge.config.types import Float, Int, Key, ListOf, Optional, Str
from recforge.errors import ConfigError
from recforge.models.losses import bpr_loss
from recforge.models.sequential.base import SequentialRecommender, loss_type_key
from recforge.registry import register_model


@register_model
class SHAN(SequentialRecommender):
    """Long-term attention over the history, then long-short attention over [long-term vector, last items]; both
    attentions score ``relu(W e + b) . u`` with the user's embedding ``u``."""

    hyper_parameters = (
        Key("embedding_size", Int(minimum=1), 64, "Dimension of user and item embeddings."),
        Key("short_item_length", Int(minimum=1), 2, "The last N items the long-short attention reads."),
        loss_type_key(),
        Key(
            "reg_weight",
            ListOf(Float(minimum=0.0)),
            [0.01, 0.0001],
            "L2 weights [of the two attention matrices, of the batch's user and target embeddings].",
        ),
        Key(
            "transform",
            Optional(Str(choices=TRANSFORMS)),
            "inverse_itemseq",
            "SHAN reads each history right-aligned (the inverse_itemseq transform's Inverse_item_id_list).",
        ),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.INVERSE_ITEM_SEQ = "Inverse_" + self.ITEM_SEQ
        self.embedding_size = size = config["embedding_size"]
        self.short_item_length = config["short_item_length"]
        if self.short_item_length > self.max_seq_length:
            raise ConfigError(
                f"config key 'short_item_length': {self.short_item_length} is longer than MAX_ITEM_LIST_LENGTH "
                f"({self.max_seq_length})"
            )
        if len(config["reg_weight"]) != 2:
            raise ConfigError(f"config key 'reg_weight': {config['reg_weight']!r} is not a list of 2 numbers")
        if config["transform"] != "inverse_itemseq":
            raise ConfigError(
                f"config key 'transform': SHAN reads the histories of inverse_itemseq, not {config['transform']!r}"
            )
        self.reg_weight = list(config["reg_weight"])
        bound = math.sqrt(3 / size)
        self.item_embedding = nn.Embedding(self.n_items, size, padding_idx=0)
        self.user_embedding = nn.Embedding(self.n_users, size)
        self.long_w = nn.Linear(size, size)
        self.long_b = nn.Parameter(nn.init.uniform_(torch.zeros(size), -bound, bound))
        self.long_short_w = nn.Linear(size, size)
        self.long_short_b = nn.Parameter(nn.init.uniform_(torch.zeros(size), -bound, bound))
        self.relu = nn.ReLU()
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        """RecBole's: embeddings normal(0, 0.01), linear weights uniform(+-sqrt(3 / d)); linear biases keep
        PyTorch's initialisation."""
        if isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight.data, 0.0, 0.01)
        elif isinstance(module, nn.Linear):
            bound = math.sqrt(3 / self.embedding_size)
            nn.init.uniform_(module.weight.data, -bound, bound)

    def _attention(
        self, values: torch.Tensor, user: torch.Tensor, mask: torch.Tensor, w: nn.Linear, b: torch.Tensor
    ) -> torch.Tensor:
        """``sum_t softmax_t(relu(w(v_t) + b) . u) v_t`` over values [B, T, d], the users' embeddings [B, d], with
        the positions where ``mask`` [B, T] is true left out (RecBole's -1e9): [B, d]."""
        scores = (self.relu(w(values) + b) @ user.unsqueeze(2)).squeeze(-1)
        weights = F.softmax(scores.masked_fill(mask, -1e9), dim=-1)
        return (values * weights.unsqueeze(2)).sum(dim=1)

    def forward(self, item_seq: torch.Tensor, user: torch.Tensor) -> torch.Tensor:
        """The representation [B, d] of right-aligned histories [B, L] of the users [B]."""
        items = self.item_embedding(item_seq)
        user_embedding = self.user_embedding(user)
        mask = item_seq == 0
        long_term = self._attention(items, user_embedding, mask, self.long_w, self.long_b).unsqueeze(1)
        short = -self.short_item_length
        long_short = torch.cat([long_term, items[:, short:]], dim=1)
        long_short_mask = torch.cat([torch.zeros_like(mask[:, :1]), mask[:, short:]], dim=1)
        return self._attention(long_short, user_embedding, long_short_mask, self.long_short_w, self.long_short_b)

    def sequence_output(self, interaction) -> torch.Tensor:
        return self.forward(interaction[self.INVERSE_ITEM_SEQ], interaction[self.USER_ID])

    def reg_loss(self, user_embedding: torch.Tensor, item_embedding: torch.Tensor) -> torch.Tensor:
        """RecBole's (unsquared) L2 norms of the attention matrices and of the batch's user / target embeddings."""
        reg_1, reg_2 = self.reg_weight
        weights = reg_1 * torch.norm(self.long_w.weight, p=2) + reg_1 * torch.norm(self.long_short_w.weight, p=2)
        return weights + reg_2 * torch.norm(user_embedding, p=2) + reg_2 * torch.norm(item_embedding, p=2)

    def calculate_loss(self, interaction) -> torch.Tensor:
        seq_output = self.sequence_output(interaction)
        pos_items = interaction[self.POS_ITEM_ID]
        pos_items_emb = self.item_embedding(pos_items)
        if self.loss_type == "BPR":
            neg_items_emb = self.item_embedding(interaction[self.NEG_ITEM_ID])
            loss = bpr_loss((seq_output * pos_items_emb).sum(-1), (seq_output * neg_items_emb).sum(-1))
        else:
            loss = F.cross_entropy(seq_output @ self.item_embedding.weight.T, pos_items)
        return loss + self.reg_loss(self.user_embedding(interaction[self.USER_ID]), pos_items_emb)
