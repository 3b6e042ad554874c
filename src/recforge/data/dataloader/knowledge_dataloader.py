"""RecBole's ``recbole.data.dataloader.knowledge_dataloader``: the loaders of knowledge-aware models."""

from recforge.data.loaders.knowledge import KGDataLoader, KnowledgeBasedDataLoader

__all__ = ["KGDataLoader", "KnowledgeBasedDataLoader"]
