"""RecBole's import paths for the loaders (``recbole.data.dataloader.*``): scripts and tests written for RecBole
import them from here; recforge's own code uses ``recforge.data.loaders`` and ``recforge.data.loaders.knowledge``."""

from recforge.data.dataloader.general_dataloader import (
    FullSortEvalDataLoader,
    NegSampleEvalDataLoader,
    TrainDataLoader,
)
from recforge.data.dataloader.knowledge_dataloader import KGDataLoader, KnowledgeBasedDataLoader

__all__ = [
    "FullSortEvalDataLoader",
    "KGDataLoader",
    "KnowledgeBasedDataLoader",
    "NegSampleEvalDataLoader",
    "TrainDataLoader",
]
