"""GRU4RecKG: GRU4Rec with pretrained knowledge-graph entity embeddings (RecBole's model), RecBole's formulation."""

from __future__ import annotations

import torch
from torch import nn

from recforge.config.types import Bool, Float, Int, Key
from recforge.models.init import xavier_normal_initialization
from recforge.models.sequential.base import SequentialRecommender, loss_type_key
from recforge.models.sequential.pretrained_kg import ENTITY_VECTORS, pretrained_entities
from recforge.registry import register_model


@register_model
class GRU4RecKG(SequentialRecommender):
    """Two GRUs (no biases), one over the history's item embeddings, one over its items' entity embeddings (the
    pretrained ``ent_emb`` vectors of ``<dataset>.ent``, frozen by default), each after dropout; their outputs at
    the last item, concatenated and projected to the embedding size, score every item by a dot product with its
    item embedding (the entity vectors do not score)."""

    reads_knowledge_graph = True  # a KGSeqDataset: linked items only, entity i = item i
    knowledge_embeddings = (ENTITY_VECTORS,)  # (file suffix, (id field, vector field)): preloaded
    hyper_parameters = (
        Key("embedding_size", Int(minimum=1), 64, "Dimension of item embeddings (and of the entity vectors)."),
        Key("hidden_size", Int(minimum=1), 128, "GRU hidden units."),
        Key("num_layers", Int(minimum=1), 1, "GRU layers."),
        Key("dropout_prob", Float(minimum=0.0, maximum=1.0), 0.1, "Dropout on item and entity embeddings."),
        Key("freeze_kg", Bool(), True, "Keep the pretrained entity vectors fixed."),
        loss_type_key(),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        size, hidden, layers = config["embedding_size"], config["hidden_size"], config["num_layers"]
        self.item_embedding = nn.Embedding(self.n_items, size, padding_idx=0)
        self.entity_embedding = nn.Embedding(self.n_items, size, padding_idx=0)
        self.item_emb_dropout = nn.Dropout(config["dropout_prob"])
        self.entity_emb_dropout = nn.Dropout(config["dropout_prob"])
        self.item_gru_layers = nn.GRU(size, hidden, layers, bias=False, batch_first=True)
        self.entity_gru_layers = nn.GRU(size, hidden, layers, bias=False, batch_first=True)
        self.dense_layer = nn.Linear(hidden * 2, size)
        self.apply(xavier_normal_initialization)  # embeddings and linears; the GRUs keep torch's (RecBole's)
        self.entity_embedding.weight.data.copy_(pretrained_entities(dataset, self.n_items, size, "embedding_size"))
        self.entity_embedding.weight.requires_grad = not config["freeze_kg"]

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        item_output, _ = self.item_gru_layers(self.item_emb_dropout(self.item_embedding(item_seq)))
        entity_output, _ = self.entity_gru_layers(self.entity_emb_dropout(self.entity_embedding(item_seq)))
        last = item_seq_len - 1
        both = torch.cat([self.gather_indexes(item_output, last), self.gather_indexes(entity_output, last)], -1)
        return self.dense_layer(both)  # the projection is per position: projecting the last one alone is equal
