"""SASRecCPR: SASRec's encoder with the Softmax-CPR output layer (Chang, Agarwal & McCallum, WSDM 2024), RecBole
1.2.1's formulation.

The encoder is RecBole's SASRec (item + position embeddings, LayerNorm, dropout, a causal transformer); every
layer's output feeds the output layer of ``softmax_cpr`` (its docstring lists the computation, RecBole's oddities
kept, the crashes fixed and the differences on purpose). The output item table is the input embedding table.
Initialisation is RecBole's: normal(0, initializer_range) linear and embedding weights (the padding row
included, so E[0] is a nonzero, trained row), zero linear biases, LayerNorm 1 / 0; ``weight_global`` stays ones.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from recforge.models.sequential.base import normal_initialization, transformer_keys
from recforge.models.sequential.layers import TransformerEncoder
from recforge.models.sequential.softmax_cpr import SoftmaxCPRRecommender, cpr_keys
from recforge.registry import register_model


@register_model
class SASRecCPR(SoftmaxCPRRecommender):
    """SASRec with a Softmax-CPR output layer: its probabilities of the next item over every item."""

    hyper_parameters = (
        *(replace(key, default=0.0) if key.name == "hidden_dropout_prob" else key for key in transformer_keys(0.1)),
        *cpr_keys(n_facet_hidden=2, partition_modes=("replace", "add")),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        hidden = config["hidden_size"]
        self.build_output_layer(hidden, layers=config["n_layers"], states=config["n_layers"])
        self.item_embedding = nn.Embedding(self.n_items, hidden, padding_idx=0)
        self.position_embedding = nn.Embedding(self.max_seq_length, hidden)
        self.trm_encoder = TransformerEncoder.from_config(config)
        self.LayerNorm = nn.LayerNorm(hidden, eps=config["layer_norm_eps"])
        self.dropout = nn.Dropout(config["hidden_dropout_prob"])
        self.apply(normal_initialization(config["initializer_range"]))

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's output [B, L, d] (the top one last) for histories [B, L]; the lengths are unused."""
        positions = torch.arange(item_seq.size(1), device=item_seq.device).unsqueeze(0)
        hidden = self.dropout(self.LayerNorm(self.item_embedding(item_seq) + self.position_embedding(positions)))
        return self.trm_encoder(hidden, self.get_attention_mask(item_seq), output_all_encoded_layers=True)
