"""DIEN's data set (RecBole's ``DIENDataset``): sequential examples whose histories also carry a negative item per
position, ``neg_item_id_list`` (``NEG_PREFIX`` + the item list), for DIEN's auxiliary loss.

Each interaction gets one negative, drawn once when the examples are made: uniform over the real items other than
the interaction's own item (RecBole's ``SeqSampler``), from a generator seeded with ``seed`` (the same negatives for
a seed, whatever the cache holds). A history's negatives are the window of its own interactions' negatives.
Difference from RecBole, on purpose (docs/architecture.md): RecBole draws the negatives in file order but reads
them in time order, so a position's negative belongs to another interaction and may equal the clicked item.
"""

from __future__ import annotations

import numpy as np

from recforge.data.columns import HistoryColumn
from recforge.data.sequential_dataset import SequentialDataset


class DIENDataset(SequentialDataset):
    """``SequentialDataset`` plus ``neg_item_id_list`` (see the module docstring)."""

    def data_augmentation(self) -> None:
        super().data_augmentation()
        items = np.asarray(self.interactions[self.iid_field], dtype=np.int64)
        negatives = negative_items(items, self.item_num, np.random.default_rng(self.config["seed"]))
        lists = self.inter_feat[self.iid_field + self.list_suffix]
        self.neg_item_list_field = self.config["NEG_PREFIX"] + self.iid_field + self.list_suffix
        self.inter_feat[self.neg_item_list_field] = HistoryColumn(negatives, lists.windows, lists.width)
        self.field2type[self.neg_item_list_field] = "token_seq"
        self.field2source[self.neg_item_list_field] = "inter"
        self.field2id_token[self.neg_item_list_field] = self.field2id_token[self.iid_field]


def negative_items(items: np.ndarray, item_num: int, generator: np.random.Generator) -> np.ndarray:
    """For each of ``items`` (ids in 1 .. item_num - 1) an id drawn uniformly among the other real items."""
    if item_num < 3:
        return np.zeros_like(items)  # no other real item to draw
    draws = generator.integers(1, item_num - 1, len(items))  # 1 .. item_num - 2, then skip the item itself
    return draws + (draws >= items)
