"""GRU4Rec: session-based recommendation with recurrent networks (Hidasi et al., ICLR 2016; Tan et al., DLRS 2016),
RecBole's formulation."""

from __future__ import annotations

import torch
from torch import nn

from recforge.config.types import Float, Int, Key
from recforge.models.sequential.base import SequentialRecommender, gbce_keys, loss_type_key
from recforge.registry import register_model


@register_model
class GRU4Rec(SequentialRecommender):
    """A GRU (no biases) over the history's item embeddings; its output at the last item, projected to the
    embedding size, scores every item by a dot product with its embedding."""

    hyper_parameters = (
        Key("embedding_size", Int(minimum=1), 64, "Dimension of item embeddings."),
        Key("hidden_size", Int(minimum=1), 128, "GRU hidden units."),
        Key("num_layers", Int(minimum=1), 1, "GRU layers."),
        Key("dropout_prob", Float(minimum=0.0, maximum=1.0), 0.3, "Dropout on the item embeddings."),
        loss_type_key(gbce=True),
        *gbce_keys(),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        size = config["embedding_size"]
        self.item_embedding = nn.Embedding(self.n_items, size, padding_idx=0)
        self.emb_dropout = nn.Dropout(config["dropout_prob"])
        self.gru_layers = nn.GRU(size, config["hidden_size"], config["num_layers"], bias=False, batch_first=True)
        self.dense = nn.Linear(config["hidden_size"], size)
        nn.init.xavier_normal_(self.item_embedding.weight)  # RecBole initialises the first GRU layer only
        nn.init.xavier_uniform_(self.gru_layers.weight_hh_l0)
        nn.init.xavier_uniform_(self.gru_layers.weight_ih_l0)

    def position_outputs(self, item_seq: torch.Tensor) -> torch.Tensor:
        """Every position's output [B, L, d] (the GRU state after items ``0..t``, projected)."""
        output, _ = self.gru_layers(self.emb_dropout(self.item_embedding(item_seq)))
        return self.dense(output)

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        return self.gather_indexes(self.position_outputs(item_seq), item_seq_len - 1)
