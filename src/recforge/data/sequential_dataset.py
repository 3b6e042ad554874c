"""The data set of sequential models (RecBole's ``SequentialDataset``): each user's interactions in time order, and
one example per interaction but the user's first, whose history is the user's earlier items.

Augmentation, RecBole's way without its copies:

1. The processed interactions are ordered by user, then by time as RecBole orders them: a stable sort of the times
   rounded to float32 (its tensors' type), so interactions whose times round alike keep their file order.
   RecBole's order is followed on purpose, rounding included (docs/architecture.md): it decides which item is a
   user's last, and so the test example. The order is computed once and cached with the processed data
   (``derived["sequence_order"]``).
2. Every interaction at position ``p`` of a user whose first interaction is at ``s < p`` becomes an example: its own
   columns (the target ``item_id``, its time, ...), ``item_length = min(p - s, MAX_ITEM_LIST_LENGTH)`` and, for every
   other column of the interactions, the list of the history's values (``item_id_list``, ``timestamp_list``, ...;
   ``LIST_SUFFIX``). The lists are ``HistoryColumn``s: windows into the ordered interactions, gathered [B, L] per
   batch, never the [examples x L] copy RecBole builds.

With ``benchmark_filename`` the examples are the files' rows as they are (RecBole's rule): the files carry the lists
(``item_id_list`` as a token_seq column, ``alias_of_item_id: [item_id_list]``) and ``item_length`` is their length;
a list longer than ``MAX_ITEM_LIST_LENGTH`` keeps its last items.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from recforge.data.columns import HISTORY_END, HistoryColumn, SeqColumn, Windows, take
from recforge.data.dataset import Dataset
from recforge.data.interaction import BatchFeatures, Interaction
from recforge.utils.arrays import stable_argsort

NEXT_PREFIX = "next_"  # the column of the items after each history item: next_item_id_list
SEQUENCE_ORDER = "sequence_order"  # derived: int64 [interactions], the rows by user, then by time (float32, stable)


class SequentialDataset(Dataset):
    """A ``Dataset`` whose rows (``inter_feat``) are examples: a target interaction and its history (see the module
    docstring).

    Attributes (RecBole's, besides ``Dataset``'s):
        max_item_list_len: ``MAX_ITEM_LIST_LENGTH``.
        item_list_length_field: ``ITEM_LIST_LENGTH_FIELD``, each example's history length.
        <field>_list_field: the list column of each interaction column (``item_id_list_field``, ...).
        interactions: the processed interactions, each user's in time order, one user after another (None with
            ``benchmark_filename``).
        user_starts: [user_num + 1] int64: user ``u``'s interactions are rows ``user_starts[u]:user_starts[u + 1]``
            of ``interactions``.
    """

    def _set_fields(self, config: Mapping[str, Any]) -> None:
        super()._set_fields(config)
        self.max_item_list_len: int = config["MAX_ITEM_LIST_LENGTH"]
        self.item_list_length_field: str = config["ITEM_LIST_LENGTH_FIELD"]
        self.list_suffix: str = config["LIST_SUFFIX"]
        self.interactions = None
        self.user_starts: np.ndarray | None = None

    # -- processing --------------------------------------------------------------------------------
    def _derive(self) -> None:
        super()._derive()
        if not self.config.get("benchmark_filename"):
            self.derived[SEQUENCE_ORDER] = self._time_order()

    def _time_order(self) -> np.ndarray:
        """Rows of ``inter_feat`` by user, then by time rounded to float32, ties in file order."""
        from recforge.errors import ConfigError

        time = self.inter_feat.get(self.time_field) if self.time_field else None
        if not isinstance(time, np.ndarray):
            raise ConfigError(
                f"sequential models order each user's interactions by time, but the time column {self.time_field!r} "
                "is not loaded; add it to load_col.inter (and set TIME_FIELD)"
            )
        # One stable sort of (user, time as float32): the float's bits made to order as the float does
        bits = (np.asarray(time, dtype=np.float32) + np.float32(0.0)).view(np.uint32).astype(np.int64)  # -0 -> 0
        bits = np.where(bits >> 31, bits ^ 0xFFFFFFFF, bits | 0x80000000)
        users = np.asarray(self.inter_feat[self.uid_field], dtype=np.int64)
        return stable_argsort((users << 32) | bits)

    def finish(self) -> None:
        """Make the examples: augmentation, or the lists of ``benchmark_filename``'s files."""
        if self.config.get("benchmark_filename"):
            self._benchmark_presets()
        else:
            self.data_augmentation()

    def data_augmentation(self) -> None:
        """Turn the processed interactions into examples (RecBole's name; see the module docstring)."""
        order = self.derived.get(SEQUENCE_ORDER)
        if order is None or len(order) != self.inter_num:
            order = self._time_order()
        ordered = take(self.inter_feat, order)
        users = np.asarray(ordered[self.uid_field])
        n = len(users)
        first = np.ones(n, dtype=bool)
        first[1:] = users[1:] != users[:-1]
        starts = np.maximum.accumulate(np.where(first, np.arange(n), 0))
        ends = np.flatnonzero(~first)
        windows = Windows(ends, np.minimum(ends - starts[ends], self.max_item_list_len))
        examples = take(ordered, ends)
        for field, column in ordered.items():
            if field != self.uid_field and isinstance(column, np.ndarray):
                self._add_list(examples, field, HistoryColumn(np.asarray(column), windows, self.max_item_list_len))
        examples[self.item_list_length_field] = windows.lengths
        self._set_length_field()
        self.interactions = ordered
        self.user_starts = np.searchsorted(users, np.arange(self.user_num + 1))
        self.inter_feat = examples

    def _benchmark_presets(self) -> None:
        """The lists of the files' rows as history columns (their last ``MAX_ITEM_LIST_LENGTH`` values)."""
        examples = dict(self.inter_feat)
        for field in list(examples):
            column = examples.get(field + self.list_suffix)
            if field + self.list_suffix in self.field2type and isinstance(column, SeqColumn):
                ends = column.offsets[1:].astype(np.int64)
                windows = Windows(ends, np.minimum(column.lengths, self.max_item_list_len).astype(np.int64))
                examples[field + self.list_suffix] = HistoryColumn(column.values, windows, self.max_item_list_len)
                setattr(self, f"{field}_list_field", field + self.list_suffix)
        lists = getattr(self, "item_id_list_field", None)
        if lists is None:
            from recforge.errors import DataError

            raise DataError(
                f"{self.inter_files()[0]}: sequential models read each row's history from a token_seq column "
                f"{self.iid_field + self.list_suffix!r} (with alias_of_item_id: [{self.iid_field + self.list_suffix}]) "
                "when benchmark_filename gives the split; the file has none"
            )
        examples[self.item_list_length_field] = np.asarray(examples[lists].lengths)
        self._set_length_field()
        self.inter_feat = examples

    def _add_list(self, examples: dict[str, Any], field: str, column: HistoryColumn) -> None:
        name = field + self.list_suffix
        examples[name] = column
        self.field2type[name] = "token_seq" if self.field2type.get(field) == "token" else "float_seq"
        self.field2source[name] = "inter"
        if field in self.field2id_token:
            self.field2id_token[name] = self.field2id_token[field]
        setattr(self, f"{field}_list_field", name)

    def _set_length_field(self) -> None:
        self.field2type[self.item_list_length_field] = "token"
        self.field2source[self.item_list_length_field] = "inter"

    # -- public API --------------------------------------------------------------------------------
    def time_sort_key(self, time: np.ndarray) -> np.ndarray:
        """Times as eval_args' TO order compares them: rounded to float32, as RecBole (and the examples' order)."""
        return np.asarray(time, dtype=np.float32)

    def seen_items(self) -> tuple[np.ndarray, np.ndarray | None]:
        """``(values, user_starts)``: an example's user had ``values[user_starts[user]:history_end]`` before its
        target (the items of ``interactions``); with ``benchmark_filename``, ``user_starts`` is None and the
        items are those of the row's list, ``values[history_end - item_length:history_end]``."""
        lists = self.inter_feat[self.item_id_list_field]
        return lists.values, self.user_starts

    def next_item_examples(self) -> SequentialDataset:
        """This (training) split for all-position training (``train_all_positions``): per user, the example with
        the longest history and every ``MAX_ITEM_LIST_LENGTH``-th one before it, so their histories tile the
        user's training sequence; each has ``next_<item_id_list>``, the items that follow each history item (the
        history shifted by one, the target last), a window of the same interactions."""
        users = np.asarray(self.inter_feat[self.uid_field])
        lists = self.inter_feat[self.item_id_list_field]
        order = np.lexsort((lists.windows.ends, users))  # by user, then in time
        grouped = users[order]
        last = np.ones(len(order), dtype=bool)
        last[:-1] = grouped[1:] != grouped[:-1]
        group_ends = np.flatnonzero(last)
        from_end = group_ends[np.searchsorted(group_ends, np.arange(len(order)))] - np.arange(len(order))
        part = self.copy(take(self.inter_feat, np.sort(order[from_end % self.max_item_list_len == 0])))
        taken = part.inter_feat[self.item_id_list_field]
        name = NEXT_PREFIX + self.item_id_list_field
        part.inter_feat = {**part.inter_feat, name: replace(taken, offset=1)}
        part.field2type = {**self.field2type, name: "token_seq"}
        return part

    def user_grouped_time_order(self) -> np.ndarray | None:
        """The examples' order in a TO split grouped by user (``recforge.data.split.rules``), without sorting them:
        RecBole sorts every example by time (float32, stable), then takes the users in the order of their first
        example. The examples are each user's in that order already, one user after another, so only the users
        are ordered, by their first example's time and row."""
        if self.config["eval_args"]["order"] != "TO" or self.interactions is None:
            return None
        users = np.asarray(self.inter_feat[self.uid_field])
        firsts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
        lengths = np.diff(np.r_[firsts, len(users)])
        time = self.time_sort_key(np.asarray(self.inter_feat[self.time_field]))
        ranked = np.lexsort((firsts, time[firsts]))
        starts, lengths = firsts[ranked], lengths[ranked]
        return np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(len(users))

    def latest_batch(self, users: np.ndarray) -> Interaction:
        """A batch whose rows are the ``users``' most recent histories (each user's last ``MAX_ITEM_LIST_LENGTH``
        interactions of every split), to recommend what comes next."""
        if self.user_starts is None:
            from recforge.errors import DataError

            raise DataError(
                "recommending from a user's latest history needs the interactions in time order; a data set split "
                "by benchmark_filename has only its files' rows"
            )
        users = np.asarray(users, dtype=np.int64)
        ends = self.user_starts[users + 1]
        lengths = np.minimum(ends - self.user_starts[users], self.max_item_list_len)
        columns = {self.uid_field: users, HISTORY_END: ends, self.item_list_length_field: lengths}
        return Interaction({name: torch.from_numpy(values) for name, values in columns.items()}, features=self.features)

    @property
    def features(self) -> BatchFeatures:
        """The batch features (built once)."""
        if getattr(self, "_features", None) is None:
            self._features = self.batch_features()
        return self._features

    def batch_features(self) -> BatchFeatures:
        """The user / item features of ``Dataset.batch_features``, and the history lists, gathered when read."""
        features = super().batch_features()
        histories = {name: c for name, c in self.inter_feat.items() if isinstance(c, HistoryColumn)}
        features.add_histories(histories, self.item_list_length_field)
        return features

    def inter_matrix(self, form: str = "coo", value_field: str | None = None):
        """RecBole's: the user x item matrix of the examples' targets and, for examples whose history has one item,
        that item (the user's first interaction), so a training split covers every training interaction."""
        import scipy.sparse as sp

        targets = super().inter_matrix("coo", value_field)
        lists = self.inter_feat.get(getattr(self, "item_id_list_field", ""))
        if not isinstance(lists, HistoryColumn):
            return targets if form == "coo" else targets.tocsr()
        single = np.flatnonzero(lists.lengths == 1)
        first_items = lists.values[lists.windows.ends[single] - 1]
        if value_field is None:
            values = np.ones(len(single), dtype=np.float32)
        else:
            values = np.asarray(self.inter_feat[value_field + self.list_suffix].values, dtype=np.float32)
            values = values[lists.windows.ends[single] - 1]
        users = np.asarray(self.inter_feat[self.uid_field])[single]
        firsts = sp.coo_matrix((values, (users, first_items)), shape=targets.shape)
        matrix = (targets + firsts).tocoo()
        return matrix if form == "coo" else matrix.tocsr()

    def build(self) -> list[Dataset]:
        """Split the examples following ``eval_args``; order TO is required (RecBole refuses others here too)."""
        from recforge.config.families import check_sequential_order

        source = self.config.source("eval_args") if hasattr(self.config, "source") else "the config"
        check_sequential_order(self.config, source)
        return super().build()
