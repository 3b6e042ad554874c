"""GRU4RecCPR: GRU4Rec's encoder with the Softmax-CPR output layer (Chang, Agarwal & McCallum, WSDM 2024), RecBole
1.2.1's formulation.

The encoder is RecBole's GRU4Rec run over every position: ``dense(GRU(dropout(E_in[seq])))`` [B, L,
embedding_size], the one hidden state the output layer of ``softmax_cpr`` reads (its docstring lists the
computation, RecBole's oddities kept, the crashes fixed and the differences on purpose). The output item table is
the input table, or with ``use_out_emb`` a table of its own (RecBole's ``out_item_embedding``, registered under
that name in both cases, so a RecBole state dict loads).

GRU4RecCPR's own oddities kept: the loss is a cross-entropy over the log-probabilities, a second log-softmax
(``-log(p[target] + 1e-8) + log(sum_v (p_v + 1e-8))``, about n_items x 1e-8 above SASRecCPR's); with trailing
padding the query is the GRU's state after it read E_in[0] at each padding position; partition_merging_mode
'half' halves the history items' other logits. Initialisation is RecBole's: xavier-normal embeddings (the padding
row included), xavier-uniform weights of the GRU's first layer, drawn in module order (the GRU first); every linear
layer keeps PyTorch's initialisation. Fixed: n_facet_hidden above 1 with num_layers above 1 asks for hidden
states the encoder does not give, a ConfigError (RecBole: IndexError).
"""

from __future__ import annotations

import torch
from torch import nn

from recforge.config.types import Bool, Float, Int, Key
from recforge.models.sequential.softmax_cpr import LOG_EPSILON, SoftmaxCPRRecommender, cpr_keys
from recforge.registry import register_model


def recbole_initialization(module: nn.Module) -> None:
    """RecBole's GRU4RecCPR ``_init_weights``: xavier-normal embeddings, xavier-uniform first GRU layer."""
    if isinstance(module, nn.Embedding):
        nn.init.xavier_normal_(module.weight)
    elif isinstance(module, nn.GRU):
        nn.init.xavier_uniform_(module.weight_hh_l0)
        nn.init.xavier_uniform_(module.weight_ih_l0)


@register_model
class GRU4RecCPR(SoftmaxCPRRecommender):
    """GRU4Rec with a Softmax-CPR output layer: its probabilities of the next item over every item."""

    hyper_parameters = (
        Key("embedding_size", Int(minimum=1), 64, "Dimension of item embeddings (and of the output layer)."),
        Key("hidden_size", Int(minimum=1), 128, "GRU hidden units."),
        Key("num_layers", Int(minimum=1), 1, "GRU layers."),
        Key("dropout_prob", Float(minimum=0.0, maximum=1.0), 0.0, "Dropout on the item embeddings."),
        *cpr_keys(n_facet_hidden=1, partition_modes=("replace", "add", "half")),
        Key("use_out_emb", Bool(), False, "A separate output item table (false: the input embeddings score items)."),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        size = config["embedding_size"]
        self.dense = nn.Linear(config["hidden_size"], size)
        self.build_output_layer(size, layers=config["num_layers"], states=1)
        self.emb_dropout = nn.Dropout(config["dropout_prob"])
        self.gru_layers = nn.GRU(size, config["hidden_size"], config["num_layers"], bias=False, batch_first=True)
        self.item_embedding = nn.Embedding(self.n_items, size, padding_idx=0)
        if config["use_out_emb"]:
            self.out_item_embedding = nn.Linear(size, self.n_items, bias=False)
        else:
            self.out_item_embedding = self.item_embedding  # one module under both names, as RecBole
        self.apply(recbole_initialization)

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> list[torch.Tensor]:
        """The one hidden state [B, L, embedding_size] at every position, in a list; the lengths are unused."""
        output, _ = self.gru_layers(self.emb_dropout(self.item_embedding(item_seq)))
        return [self.dense(output)]

    def output_items(self) -> torch.Tensor:
        return self.out_item_embedding.weight

    def probability_loss(self, probabilities: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """RecBole's ``CrossEntropyLoss`` of ``log(p + 1e-8)``: a log-softmax of the log-probabilities."""
        return nn.functional.cross_entropy(torch.log(probabilities + LOG_EPSILON), targets)
