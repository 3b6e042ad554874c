"""The split parts and user histories ``data_preparation`` computes, cached with the processed data set.

On 25M interactions, splitting and building the users' histories takes several times as long as mapping the
processed data (about 9 s against 1 s); both depend only on the processed data (its cache entry), ``eval_args``,
``seed`` and the fields that order and drop columns. They are stored in the data set's entry under
``prepared/<key>/`` (``recforge.data.cache.entries``: ``.npy`` files memory-mapped when read), so a second run with
the same split reads them instead: the parts' columns (before ``unused_col`` is applied) and every history by
name. A sub-entry records its key and the key of the entry it was split from, and is verified like the processed
data when opened (``entries.read_entry``); one that differs or cannot be read is reported in one warning line,
removed and computed again. A data set without a cache entry (``data_cache: false``, an unwritable cache) or
whose class splits in its own way (an overridden ``build``) computes everything, as before.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recforge.data.cache import entries
from recforge.data.dataset import Dataset
from recforge.data.split.history import UserHistory

logger = logging.getLogger("recforge")

FORMAT_VERSION = 3  # 3: parts grouped by user (RecBole's order)
KEEP = 4
SPLIT_KEYS = ("eval_args", "seed", "unused_col", "USER_ID_FIELD", "ITEM_ID_FIELD", "TIME_FIELD", "benchmark_filename")


class PreparedCache:
    """Memoises the split and the histories of one data set and split setting (``path`` None: no caching)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.arrays: dict[str, np.ndarray] = {}
        self.meta: dict[str, Any] = {"parts": None, "histories": []}
        self.hit = False
        self.computed = False
        if path is not None and (path / entries.META).is_file():
            try:
                self.arrays, self.meta = entries.read_entry(path, self.built_from)
                self.hit = True
                entries.touch(path)
            except Exception as exc:
                what = "does not match its manifest" if isinstance(exc, entries.EntryMismatch) else "is unreadable"
                logger.warning("prepared-split cache %s %s (%s); rebuilding it", path, what, exc)
                entries.remove_entry(path)
                self.arrays, self.meta = {}, {"parts": None, "histories": []}

    @property
    def built_from(self) -> dict[str, str]:
        """What the sub-entry is built from: its key and the key of the processed-data entry it lies in."""
        assert self.path is not None
        return {"key": self.path.name, "entry": self.path.parent.parent.name}

    @classmethod
    def for_dataset(cls, dataset: Dataset) -> PreparedCache:
        entry = getattr(dataset, "cache_entry", None)
        if entry is None or type(dataset).build is not Dataset.build or not (entry / entries.META).is_file():
            return cls(None)
        settings = {key: dataset.config.get(key) for key in SPLIT_KEYS}
        blob = json.dumps({"format": FORMAT_VERSION, "settings": settings}, sort_keys=True, default=str)
        return cls(entry / "prepared" / hashlib.blake2b(blob.encode(), digest_size=16).hexdigest())

    def parts(self, dataset: Dataset) -> list[Dataset]:
        """``[train, valid, test]`` of ``dataset`` (``Dataset.build``), from the cache when stored."""
        from recforge.data.split.rules import split_columns

        if self.path is None:
            return dataset.build()
        if self.hit and self.meta["parts"] is not None:
            columns = [
                entries.unpack_table(f"part{i}", kinds, self.arrays) for i, kinds in enumerate(self.meta["parts"])
            ]
        else:
            columns = split_columns(dataset)
            self.meta["parts"] = [entries.pack_table(f"part{i}", part, self.arrays) for i, part in enumerate(columns)]
            self.computed = True
        parts = [dataset.copy(part) for part in columns]
        for part in parts:
            part.drop_unused()
        return parts

    def history(self, name: str, compute: Callable[[], UserHistory]) -> UserHistory:
        """The history stored as ``name``, or ``compute()`` (then stored)."""
        if name in self.meta["histories"]:
            n_users, n_items = self.meta["sizes"][name]
            tensors = [torch.from_numpy(self.arrays[f"history/{name}/{part}"]) for part in ("indptr", "items", "keys")]
            return UserHistory(tensors[0], tensors[1], n_users, n_items, tensors[2])
        history = compute()
        for part in ("indptr", "items", "keys"):
            self.arrays[f"history/{name}/{part}"] = getattr(history, part).numpy()
        self.meta["histories"].append(name)
        self.meta.setdefault("sizes", {})[name] = [history.n_users, history.n_items]
        self.computed = True
        return history

    def save(self) -> bool:
        """Store what was computed (nothing when everything came from the cache); True when an entry was written.
        Failures are warnings."""
        if self.path is None or not self.computed:
            return False
        try:
            entries.remove_entry(self.path)  # an entry missing a history is replaced by the complete one (POSIX: the
            # arrays mapped from it stay readable)
            entries.write_entry(self.path, self.arrays, self.meta, self.built_from)
        except OSError as exc:
            logger.warning("could not write the prepared-split cache %s: %s", self.path, exc)
            return False
        entries.keep_newest(self.path.parent, KEEP)
        return True
