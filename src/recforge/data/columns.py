"""Columns and tables of a data set, and RecBole's ``Interaction`` behaviour for them.

A table is a mapping of field -> column: an ``ArrayColumn`` (a NumPy array of ids or floats), a ``TokenColumn``
(codes into a vocabulary, while a file is read), a ``SeqColumn`` (ragged rows of token_seq / float_seq values) or
a ``HistoryColumn`` (the lists of sequential data: windows into one shared array). ``FeatureTable`` is the mapping
a ``Dataset`` exposes as ``inter_feat`` / ``user_feat`` / ``item_feat``: RecBole's scripts treat those as
``Interaction`` objects, so ``len(table)`` is the number of rows,
``table[field]`` a column, ``table[rows]`` (an int, a slice, an index array or mask) a new table of those rows,
``table.numpy()`` / ``table.to(device)`` the columns as arrays / tensors, and iterating gives the fields. An
``ArrayColumn`` is a NumPy array that also answers ``.numpy()`` (RecBole's columns are tensors), and a
``SeqColumn``'s row ``i`` is ``column[i]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from recforge.utils.arrays import gather


class ArrayColumn(np.ndarray):
    """A NumPy column (a view, no copy) with RecBole's tensor idiom ``.numpy()``."""

    def numpy(self) -> np.ndarray:
        """The column as a plain ``np.ndarray`` (the same memory)."""
        return self.view(np.ndarray)


class MappedColumn(np.memmap):
    """An ``ArrayColumn`` whose memory is a file mapped from the processed-data cache (still a ``np.memmap``)."""

    def numpy(self) -> np.ndarray:
        """The column as a plain ``np.ndarray`` (the same memory)."""
        return self.view(np.ndarray)


@dataclass
class TokenColumn:
    """A token column: ``codes`` (int64 [n]) into ``vocabulary`` (object array of str); -1 marks a missing token."""

    codes: np.ndarray
    vocabulary: np.ndarray

    def __len__(self) -> int:
        return len(self.codes)


@dataclass
class SeqColumn:
    """A ragged column: row ``i`` holds ``values[offsets[i]:offsets[i + 1]]`` (``column[i]``).

    ``values`` are int64 codes into ``vocabulary`` for token_seq (``vocabulary`` is None for float_seq, whose
    values are float64).
    """

    offsets: np.ndarray
    values: np.ndarray
    vocabulary: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, rows: Any) -> Any:
        """Row ``rows`` (an int: its values) or the rows ``rows`` (a slice, an index array or mask: a SeqColumn)."""
        if isinstance(rows, (int, np.integer)):
            row = int(rows) + len(self) if rows < 0 else int(rows)
            if not 0 <= row < len(self):
                raise IndexError(f"row {rows} of a column of {len(self)} rows")
            return self.values[self.offsets[row] : self.offsets[row + 1]].view(ArrayColumn)
        return self.take(_row_indices(rows, len(self)))

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def take(self, rows: np.ndarray) -> SeqColumn:
        """The rows ``rows`` (int indices) as a new ragged column."""
        starts, lengths = self.offsets[rows], self.lengths[rows]
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1])
        return SeqColumn(offsets, self.values[flat], self.vocabulary)

    def padded(self, pad: float = 0, max_len: int | None = None) -> np.ndarray:
        """A dense [n, max_len] array, each row left-aligned and filled with ``pad``."""
        lengths = self.lengths
        width = int(lengths.max(initial=0)) if max_len is None else max_len
        out = np.full((len(self), width), pad, dtype=self.values.dtype)
        rows = np.repeat(np.arange(len(self)), lengths)
        cols = np.arange(len(self.values)) - np.repeat(self.offsets[:-1], lengths)
        keep = cols < width
        out[rows[keep], cols[keep]] = self.values[keep]
        return out

    def numpy(self) -> np.ndarray:
        """The rows as a dense [n, longest row] array padded with 0 (RecBole's sequence fields)."""
        return self.padded()


HISTORY_END = "history_end"  # the batch column of sequential data: where each row's history ends (``Windows.ends``)


@dataclass
class Windows:
    """Where each row's history lies in a shared array: ``values[ends[i] - lengths[i]:ends[i]]`` (int64 [n] each).
    The history columns of one table share one ``Windows``."""

    ends: np.ndarray
    lengths: np.ndarray

    def take(self, rows: np.ndarray) -> Windows:
        return Windows(gather(self.ends, rows), gather(self.lengths, rows))


@dataclass
class HistoryColumn:
    """A column of lists that are windows into one array (RecBole's ``<field>_list`` columns of sequential data):
    row ``i`` holds ``values[ends[i] - lengths[i]:ends[i]]``, at most ``width`` values, read dense as [n, width]
    right-padded with 0. Nothing is copied per row: a split takes rows of the windows, and a batch gathers its
    [B, width] block when read.

    Args:
        values: the field's values of every interaction, in the order the windows index (each user's interactions
            by time, one user after another).
        windows: the rows' windows.
        width: the dense width (``MAX_ITEM_LIST_LENGTH``).
        vocabulary: the token vocabulary of ``values`` (None for floats).
        offset: the windows shifted by this many positions (1: each history's next items, all-position training).
    """

    values: np.ndarray
    windows: Windows
    width: int
    vocabulary: np.ndarray | None = None
    offset: int = 0

    def __len__(self) -> int:
        return len(self.windows.ends)

    @property
    def lengths(self) -> np.ndarray:
        return self.windows.lengths

    def take(self, rows: np.ndarray, windows: Windows | None = None) -> HistoryColumn:
        """The rows ``rows``; ``windows``: their windows, already taken (shared by a table's history columns)."""
        return HistoryColumn(self.values, windows or self.windows.take(rows), self.width, self.vocabulary, self.offset)

    def padded(self) -> np.ndarray:
        """The dense [n, width] array, each row left-aligned and padded with 0."""
        ends, lengths = self.windows.ends, self.windows.lengths
        offsets = np.arange(self.width)
        positions = (ends + self.offset - lengths)[:, None] + offsets[None, :]
        inside = offsets[None, :] < lengths[:, None]
        out = np.zeros((len(self), self.width), dtype=self.values.dtype)
        out[inside] = self.values[positions[inside]]
        return out

    def numpy(self) -> np.ndarray:
        return self.padded()

    def __getitem__(self, rows: Any) -> Any:
        """RecBole's dense indexing (``column[:, :5]``, ``column[i]``), on the [n, width] array."""
        if isinstance(rows, tuple):
            return np.asarray(self.padded()[rows]).view(ArrayColumn)
        if isinstance(rows, (int, np.integer)):
            return self.take(np.array([int(rows) % len(self)])).padded()[0].view(ArrayColumn)
        return self.take(_row_indices(rows, len(self)))


Column = TokenColumn | SeqColumn | HistoryColumn | np.ndarray


def take(columns: Mapping[str, Column], rows: np.ndarray) -> dict[str, Column]:
    """Select ``rows`` (int indices or a boolean mask) of every column."""
    if rows.dtype == bool:
        rows = np.flatnonzero(rows)
    out: dict[str, Column] = {}
    taken_windows: dict[int, Windows] = {}  # history columns sharing windows keep sharing them
    for name, col in columns.items():
        if isinstance(col, HistoryColumn):
            key = id(col.windows)
            if key not in taken_windows:
                taken_windows[key] = col.windows.take(rows)
            out[name] = col.take(rows, taken_windows[key])
        elif isinstance(col, TokenColumn):
            out[name] = TokenColumn(col.codes[rows], col.vocabulary)
        elif isinstance(col, SeqColumn):
            out[name] = col.take(rows)
        else:
            out[name] = gather(col, rows)
    return out


class FeatureTable(dict):
    """Columns by field with RecBole's ``Interaction`` behaviour (see the module docstring). It is a ``dict``, so
    code that handles tables as mappings of columns is unchanged; only ``len`` counts rows, not fields."""

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            column = dict.__getitem__(self, key)
            if isinstance(column, np.memmap):
                return column.view(MappedColumn)
            return column.view(ArrayColumn) if type(column) is np.ndarray else column
        return FeatureTable(take(self, _row_indices(key, len(self))))

    def __len__(self) -> int:
        """The number of rows (RecBole's ``Interaction``); ``len(table.columns)`` counts the fields."""
        for column in dict.values(self):
            return len(column)
        return 0

    def __bool__(self) -> bool:
        return dict.__len__(self) > 0  # a table with fields is a table, even with no rows

    @property
    def columns(self) -> list[str]:
        """The fields (RecBole's ``Interaction.columns``)."""
        return list(self.keys())

    @property
    def length(self) -> int:
        """The number of rows (RecBole's ``Interaction.length``)."""
        return len(self)

    def numpy(self) -> dict[str, np.ndarray]:
        """``{field: array}``; sequence fields padded with 0."""
        return {name: np.asarray(self[name].numpy()) for name in self}

    def to(self, device: Any) -> Any:
        """The rows as an ``Interaction`` of tensors on ``device`` (sequence fields padded with 0)."""
        import torch

        from recforge.data.interaction import Interaction

        return Interaction({name: torch.as_tensor(values) for name, values in self.numpy().items()}).to(device)


def as_table(table: Mapping[str, Column] | None) -> FeatureTable | None:
    """``table`` as a ``FeatureTable`` (the same columns, no copy); None stays None."""
    return table if table is None or isinstance(table, FeatureTable) else FeatureTable(table)


def _row_indices(rows: Any, n: int) -> np.ndarray:
    """int64 indices of ``rows``: an int, a slice, an index array or list, a boolean mask, a tensor."""
    if hasattr(rows, "cpu"):
        rows = rows.cpu().numpy()
    if isinstance(rows, slice):
        return np.arange(n)[rows]
    array = np.asarray(rows)
    if array.dtype == bool:
        return np.flatnonzero(array)
    return (array.reshape(-1) % n if n else array.reshape(-1)).astype(np.int64)
