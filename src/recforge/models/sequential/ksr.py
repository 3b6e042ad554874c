"""KSR: knowledge-enhanced sequential recommendation with key-value memory networks (Huang et al., SIGIR 2018),
RecBole's formulation."""

from __future__ import annotations

import torch
from torch import nn

from recforge.config.types import Bool, Float, Int, Key
from recforge.errors import ConfigError
from recforge.models.sequential.base import SequentialRecommender, loss_type_key
from recforge.models.sequential.pretrained_kg import (
    ENTITY_VECTORS,
    RELATION_VECTORS,
    preloaded,
    pretrained_entities,
)
from recforge.registry import register_model


@register_model
class KSR(SequentialRecommender):
    """A GRU (no biases) over the history's item embeddings, and a key-value memory with one slot per relation of
    the knowledge graph (keys: the pretrained TransE relation vectors ``r``, the padding relation's zeros included;
    values: [R, K] per history).

    Write, for each history item with entity vector ``e`` (TransE-style tails ``u_r = e + r``): ``z_r =
    sigmoid(<m_r, u_r>)``, ``m_r <- (1 - z_r) m_r + z_r u_r``; the memory after the last real item is read with
    attention ``softmax(gamma <W h, r>)`` over the slots by the GRU state ``h``; the user vector is ``W_u [h;
    read]`` [B, E]; items are scored by a dot product with ``W_i [item embedding; entity embedding]``. The entity
    vectors (``<dataset>.ent``, ``kg_embedding_size`` values) start pretrained and train unless ``freeze_kg``; the
    relation vectors (``<dataset>.rel``) stay fixed.
    """

    reads_knowledge_graph = True  # a KGSeqDataset: linked items only, entity i = item i
    knowledge_embeddings = (ENTITY_VECTORS, RELATION_VECTORS)  # (file suffix, (id field, vector field))
    hyper_parameters = (
        Key("embedding_size", Int(minimum=1), 64, "Dimension of item embeddings."),
        Key("kg_embedding_size", Int(minimum=1), 64, "Dimension of the pretrained entity and relation vectors."),
        Key("hidden_size", Int(minimum=1), 128, "GRU hidden units."),
        Key("num_layers", Int(minimum=1), 1, "GRU layers."),
        Key("dropout_prob", Float(minimum=0.0, maximum=1.0), 0.1, "Dropout on the item embeddings."),
        loss_type_key(),
        Key("freeze_kg", Bool(), False, "Keep the pretrained entity vectors fixed."),
        Key("gamma", Float(), 10.0, "Scale of the memory-read attention logits."),
    )

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        if config["kg_reverse_r"]:
            raise ConfigError(
                "config key 'kg_reverse_r': KSR keeps one memory slot per relation of the .rel file, and reversed "
                "relations have no pretrained vector there (RecBole fails on a shape mismatch); set kg_reverse_r: false"
            )
        size, kg_size, hidden = config["embedding_size"], config["kg_embedding_size"], config["hidden_size"]
        self.gamma = config["gamma"]
        self.n_relations = dataset.num(config["RELATION_ID_FIELD"]) - 1  # padding and real ones, not [UI-Relation]
        self.item_embedding = nn.Embedding(self.n_items, size, padding_idx=0)
        self.entity_embedding = nn.Embedding(self.n_items, kg_size, padding_idx=0)
        self.emb_dropout = nn.Dropout(config["dropout_prob"])
        self.gru_layers = nn.GRU(size, hidden, config["num_layers"], bias=False, batch_first=True)
        self.dense = nn.Linear(hidden, kg_size)
        self.dense_layer_u = nn.Linear(hidden + kg_size, size)
        self.dense_layer_i = nn.Linear(size + kg_size, size)
        nn.init.xavier_normal_(self.item_embedding.weight)  # RecBole's: embeddings, the first GRU layer; linears
        nn.init.xavier_uniform_(self.gru_layers.weight_hh_l0)  # keep torch's initialisation
        nn.init.xavier_uniform_(self.gru_layers.weight_ih_l0)
        self.entity_embedding.weight.data.copy_(
            pretrained_entities(dataset, self.n_items, kg_size, "kg_embedding_size")
        )
        self.entity_embedding.weight.requires_grad = not config["freeze_kg"]
        relations = preloaded(dataset, RELATION_VECTORS, kg_size, "kg_embedding_size")[: self.n_relations]
        # float32: RecBole keeps the float64 of its preloaded matrix and fails in memory_read (dtype mismatch)
        self.register_buffer("relation_matrix", torch.tensor(relations, dtype=torch.float32))

    def memory_update(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """The memory [B, R, K] right after each history's last item (the writes of its items in order)."""
        # Histories longest first: at step t the histories still running are a prefix, and those whose last item
        # is t leave it (their memory kept); RecBole writes every row over all L positions, padding included, and
        # keeps the memory at each row's last item: the same values, less work.
        order = torch.argsort(item_seq_len, descending=True, stable=True)
        lengths = item_seq_len[order]
        longest = int(lengths[0])
        running = (len(lengths) - torch.bincount(lengths.cpu(), minlength=longest + 1).cumsum(0)).tolist()
        heads = self.entity_embedding(item_seq[order])  # [B, L, K]
        memory = heads.new_zeros(len(item_seq), self.n_relations, heads.shape[-1])
        finished = []
        for t in range(longest):  # running[t]: the histories longer than t
            memory = memory[: running[t]]
            tails = heads[: running[t], t, None, :] + self.relation_matrix  # [b, R, K]
            gate = torch.sigmoid((memory * tails).sum(-1, keepdim=True))
            memory = memory + gate * (tails - memory)  # (1 - z) m + z u
            finished.append(memory[running[t + 1] :])  # the histories whose last item is t
        last = torch.cat(finished[::-1])  # longest first, as ``order``
        return last[torch.argsort(order)]

    def memory_read(self, hidden: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """The memory [B, R, K] read by the GRU states [B, H]: attention over the relation keys -> [B, K]."""
        attention = torch.softmax(self.gamma * (self.dense(hidden) @ self.relation_matrix.T), dim=-1)
        return (memory * attention.unsqueeze(-1)).sum(1)

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        output, _ = self.gru_layers(self.emb_dropout(self.item_embedding(item_seq)))
        hidden = self.gather_indexes(output, item_seq_len - 1)
        read = self.memory_read(hidden, self.memory_update(item_seq, item_seq_len))
        return self.dense_layer_u(torch.cat([hidden, read], -1))

    def item_weight(self) -> torch.Tensor:
        """[n_items, E]: ``W_i [item embedding; entity embedding]`` of every item."""
        return self.dense_layer_i(torch.cat([self.item_embedding.weight, self.entity_embedding.weight], -1))
