"""Data: atomic files -> Dataset -> split -> loaders."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from recforge.data.dataset import Dataset
from recforge.data.interaction import Interaction
from recforge.data.knowledge_dataset import KnowledgeBasedDataset
from recforge.data.loaders import FullSortEvalDataLoader, TrainDataLoader
from recforge.data.loaders.knowledge import KGDataLoader, KnowledgeBasedDataLoader
from recforge.data.preparation import data_preparation


def create_dataset(config: Mapping[str, Any]) -> Dataset:
    """Load and process the data set named by ``config["dataset"]`` (RecBole's ``create_dataset``): a
    ``KnowledgeBasedDataset`` (with the .kg and .link files) for knowledge-aware models, a ``SequentialDataset``
    (examples with histories) for sequential ones (a ``DIENDataset``, with negative histories, for models whose
    ``negative_item_history`` is True; a ``KGSeqDataset`` for those whose ``reads_knowledge_graph`` is True), a
    ``Dataset`` otherwise;
    from the processed-data cache where it holds the data set (``recforge.data.cache.datasets``)."""
    from recforge.data.cache.datasets import processed_dataset
    from recforge.utils.enum_type import ModelType

    family = getattr(getattr(config, "model_class", None), "type", None)
    if family == ModelType.SEQUENTIAL:
        from recforge.data.dien_dataset import DIENDataset
        from recforge.data.sequential_dataset import SequentialDataset

        if getattr(config.model_class, "reads_knowledge_graph", False):  # KSR, GRU4RecKG
            from recforge.data.kg_seq_dataset import KGSeqDataset

            return processed_dataset(KGSeqDataset, config)
        negatives = getattr(config.model_class, "negative_item_history", False)  # DIEN's (RecBole's DIENDataset)
        return processed_dataset(DIENDataset if negatives else SequentialDataset, config)
    return processed_dataset(KnowledgeBasedDataset if family == ModelType.KNOWLEDGE else Dataset, config)


__all__ = [
    "Dataset",
    "FullSortEvalDataLoader",
    "Interaction",
    "KGDataLoader",
    "KnowledgeBasedDataLoader",
    "KnowledgeBasedDataset",
    "TrainDataLoader",
    "create_dataset",
    "data_preparation",
]
