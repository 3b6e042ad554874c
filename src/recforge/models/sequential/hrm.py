"""HRM: hierarchical representation model for next basket recommendation (Wang et al., SIGIR 2015), RecBole's
formulation.

The history is right-aligned (padding first, the last item at position ``L - 1``). Layer 1 pools item embeddings:
``max`` takes the element-wise maximum over the last ``high_order`` positions (the padding row of the table when
the history is shorter, as in RecBole); ``average`` divides the sum over all ``L`` positions (padding rows
included) by ``min(n, high_order)``, RecBole's computation. Layer 2 pools that vector with the (dropped-out) user
embedding, ``max`` or ``mean``, after another dropout on both. Items score a dot product with their embeddings.
"""

from __future__ import annotations

import torch
from torch import nn

from recforge.config.types import Float, Int, Key, Str
from recforge.errors import ConfigError
from recforge.models.sequential.base import SequentialRecommender, loss_type_key
from recforge.registry import register_model

POOLING = ("max", "average")


def xavier_normal_embeddings(module: nn.Module) -> None:
    """RecBole's HRM ``_init_weights``: xavier-normal embedding weights (the padding row included)."""
    if isinstance(module, nn.Embedding):
        nn.init.xavier_normal_(module.weight.data)


@register_model
class HRM(SequentialRecommender):
    """Two pooling layers: the last items' embeddings into one vector, then that vector with the user's embedding;
    items are scored by a dot product with their embeddings."""

    hyper_parameters = (
        Key("embedding_size", Int(minimum=1), 64, "Dimension of user and item embeddings."),
        Key("high_order", Int(minimum=1), 2, "The last N items pooled by layer 1 (<= MAX_ITEM_LIST_LENGTH)."),
        loss_type_key(),
        Key("dropout_prob", Float(minimum=0.0, maximum=1.0), 0.2, "Dropout on the user vector and on layer 2's input."),
        Key("pooling_type_layer_1", Str(choices=POOLING), "max", "Pooling of the last items' embeddings."),
        Key("pooling_type_layer_2", Str(choices=POOLING), "max", "Pooling of the user and the items' vector."),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.embedding_size: int = config["embedding_size"]
        self.pooling_type_layer_1: str = config["pooling_type_layer_1"]
        self.pooling_type_layer_2: str = config["pooling_type_layer_2"]
        self.high_order: int = config["high_order"]
        if self.high_order > self.max_seq_length:
            raise ConfigError(
                f"config key 'high_order': {self.high_order} is longer than MAX_ITEM_LIST_LENGTH "
                f"({self.max_seq_length})"
            )
        self.dropout_prob: float = config["dropout_prob"]
        self.item_embedding = nn.Embedding(self.n_items, self.embedding_size, padding_idx=0)
        self.user_embedding = nn.Embedding(self.n_users, self.embedding_size)
        self.dropout = nn.Dropout(self.dropout_prob)
        self.apply(xavier_normal_embeddings)

    @staticmethod
    def inverse_seq_item(seq_item: torch.Tensor, seq_item_len: torch.Tensor) -> torch.Tensor:
        """[B, L], [B] -> [B, L]: each history right-aligned, e.g. [1, 2, 3, 0, 0] -> [0, 0, 1, 2, 3]."""
        length = seq_item.size(1)
        source = torch.arange(length, device=seq_item.device).unsqueeze(0) - (length - seq_item_len).unsqueeze(1)
        gathered = seq_item.gather(1, source.clamp(min=0))
        return torch.where(source >= 0, gathered, torch.zeros_like(gathered))

    def pool_items(self, seq_item_embedding: torch.Tensor, seq_item_len: torch.Tensor) -> torch.Tensor:
        """Layer 1: [B, L, d] right-aligned, [B] -> [B, d]."""
        if self.pooling_type_layer_1 == "max":
            return seq_item_embedding[:, -self.high_order :, :].max(dim=1).values
        # RecBole sums every position (not only the last high_order) and divides by min(n, high_order).
        lengths = seq_item_len.clamp(max=self.high_order)
        return seq_item_embedding.sum(dim=1) / lengths.unsqueeze(1).float()

    def forward(self, seq_item: torch.Tensor, user: torch.Tensor, seq_item_len: torch.Tensor) -> torch.Tensor:
        """[B, L], [B], [B] -> the hybrid user representation [B, d]."""
        seq_item_embedding = self.item_embedding(self.inverse_seq_item(seq_item, seq_item_len))  # [B, L, d]
        user_embedding = self.dropout(self.user_embedding(user))  # [B, d]
        items = self.pool_items(seq_item_embedding, seq_item_len)  # [B, d]
        hybrid = self.dropout(torch.stack([user_embedding, items], dim=1))  # [B, 2, d]
        if self.pooling_type_layer_2 == "max":
            return hybrid.max(dim=1).values
        return hybrid.mean(dim=1)

    def sequence_output(self, interaction) -> torch.Tensor:
        return self.forward(interaction[self.ITEM_SEQ], interaction[self.USER_ID], interaction[self.ITEM_SEQ_LEN])
