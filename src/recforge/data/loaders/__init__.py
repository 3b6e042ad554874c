"""Data loaders: training batches (``training``), evaluation batches (``evaluation``), the loaders of
knowledge-aware models (``knowledge``); what they share is in ``view``. RecBole's import paths for them are in
``recforge.data.dataloader``."""

from recforge.data.loaders.evaluation import FullSortEvalDataLoader, LabeledEvalDataLoader, SampledEvalDataLoader
from recforge.data.loaders.knowledge import KGDataLoader, KnowledgeBasedDataLoader
from recforge.data.loaders.training import TrainDataLoader
from recforge.data.loaders.view import rank_slices

__all__ = [
    "FullSortEvalDataLoader",
    "KGDataLoader",
    "KnowledgeBasedDataLoader",
    "LabeledEvalDataLoader",
    "SampledEvalDataLoader",
    "TrainDataLoader",
    "rank_slices",
]
