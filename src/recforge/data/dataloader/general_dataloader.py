"""RecBole's ``recbole.data.dataloader.general_dataloader``: the loaders of general models, by RecBole's names.

``NegSampleEvalDataLoader`` is recforge's ``SampledEvalDataLoader`` (uniN / popN: positives and sampled
negatives); labelled evaluation (``mode: labeled``) has its own ``LabeledEvalDataLoader``."""

from recforge.data.loaders import FullSortEvalDataLoader, LabeledEvalDataLoader, TrainDataLoader
from recforge.data.loaders import SampledEvalDataLoader as NegSampleEvalDataLoader

__all__ = ["FullSortEvalDataLoader", "LabeledEvalDataLoader", "NegSampleEvalDataLoader", "TrainDataLoader"]
