"""GC-SAN: graph contextualised self-attention network for session-based recommendation (Xu et al., IJCAI 2019),
RecBole's formulation.

A gated graph network (SR-GNN's, without the message biases) updates the item states of each history's session
graph; a causal transformer (RecBole's multi-head encoder, where the paper has one head) reads the states by
position. The representation ``weight * a_t + (1 - weight) * h_t`` mixes the transformer's output at the last
item with that item's graph state and scores every item by a dot product with its embedding. The loss adds
``reg_weight * ||E||_2 / n_items`` of the item table ``E`` (RecBole's ``EmbLoss``).
"""

from __future__ import annotations

import torch
from torch import nn

from recforge.config.types import Float, Int, Key
from recforge.models.losses import embedding_loss
from recforge.models.sequential.base import (
    SequentialRecommender,
    loss_type_key,
    normal_initialization,
    transformer_keys,
)
from recforge.models.sequential.layers import TransformerEncoder
from recforge.models.sequential.srgnn import GNN, gather_positions, session_graph, uniform_initialization
from recforge.registry import register_model


@register_model
class GCSAN(SequentialRecommender):
    """SR-GNN's graph network followed by a transformer over the positions' states; the last position's output
    and graph state, mixed by ``weight``, score the items."""

    hyper_parameters = (
        Key(
            "weight",
            Float(minimum=0.0, maximum=1.0),
            0.6,
            "Share of the self-attention representation (the rest is the last item's graph state).",
        ),
        *transformer_keys(0.5),
        Key("step", Int(minimum=1), 1, "Graph network updates (layers)."),
        Key("reg_weight", Float(minimum=0.0), 5e-5, "Weight of the 2-norm of the item embeddings in the loss."),
        loss_type_key(),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.hidden_size: int = config["hidden_size"]
        self.step: int = config["step"]
        self.weight: float = config["weight"]
        self.reg_weight: float = config["reg_weight"]
        self.item_embedding = nn.Embedding(self.n_items, self.hidden_size, padding_idx=0)
        self.gnn = GNN(self.hidden_size, self.step, edge_biases=False)
        uniform_initialization(self.gnn, self.hidden_size)  # RecBole's GNN resets itself when built
        self.self_attention = TransformerEncoder.from_config(config)
        self.apply(normal_initialization(config["initializer_range"]))  # redraws the GNN's linear layers

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """[B, L], [B] -> the history's representation [B, hidden_size]."""
        alias, items, adjacency_in, adjacency_out = session_graph(item_seq, self.item_embedding.weight.dtype)
        hidden = self.gnn(adjacency_in, adjacency_out, self.item_embedding(items))
        seq_hidden = gather_positions(hidden, alias)  # [B, L, d]
        ht = self.gather_indexes(seq_hidden, item_seq_len - 1)
        mask = self.get_attention_mask(item_seq)
        output = self.self_attention(seq_hidden, mask, output_all_encoded_layers=False)[-1]
        at = self.gather_indexes(output, item_seq_len - 1)
        return self.weight * at + (1 - self.weight) * ht

    def calculate_loss(self, interaction) -> torch.Tensor:
        loss = self.output_loss(self.sequence_output(interaction), interaction)
        return loss + self.reg_weight * embedding_loss(self.item_embedding.weight)
