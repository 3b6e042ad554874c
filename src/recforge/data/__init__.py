"""Data: atomic files -> Dataset -> split -> loaders."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from recforge.data.dataset import Dataset
from recforge.data.interaction import Interaction
from recforge.data.loaders import FullSortEvalDataLoader, TrainDataLoader, data_preparation


def create_dataset(config: Mapping[str, Any]) -> Dataset:
    """Load and process the data set named by ``config["dataset"]`` (RecBole's ``create_dataset``)."""
    return Dataset(config)


__all__ = [
    "Dataset",
    "FullSortEvalDataLoader",
    "Interaction",
    "TrainDataLoader",
    "create_dataset",
    "data_preparation",
]
