"""The data set of knowledge-aware sequential models (RecBole's ``KGSeqDataset``, the base of its ``KSRDataset`` and
``GRU4RecKGDataset``): ``SequentialDataset``'s examples over ``KnowledgeBasedDataset``'s processing.

The .kg and .link files are read and filtered as for knowledge-aware models, so the examples hold linked items only
(ml-100k: 97,554 of 100,000 interactions, 1,598 items) and entity ``i`` is item ``i``'s entity for every item id;
pretrained entity and relation vectors come from ``additional_feat_suffix`` files (``<dataset>.ent``,
``<dataset>.rel``: ``ent_id:token ent_emb:float_seq``), their ids aliases of the entities and relations
(``alias_of_entity_id``, ``alias_of_relation_id``), and reach the model through ``preload_weight``
(``get_preload_weight("ent_id")``: [entity_num, d] float64, zero rows for entities without a vector).
``recforge kg-embeddings`` writes such files from the .kg file (TransE).
"""

from __future__ import annotations

from recforge.data.knowledge_dataset import KnowledgeBasedDataset
from recforge.data.sequential_dataset import SequentialDataset


class KGSeqDataset(SequentialDataset, KnowledgeBasedDataset):
    """Sequential examples of a knowledge-aware data set (see the module docstring)."""
