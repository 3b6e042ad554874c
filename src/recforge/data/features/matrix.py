"""Feature rows of (user, item) pairs as a sparse matrix, built vectorised, for tree models.

Each feature field (``recforge.data.features.fields.feature_fields``) becomes a block of columns:

- token: one column holding the id (RecBole's default), or, with ``convert_token_to_onehot`` and at most
  ``token_num_threhold`` ids, one 0/1 column per id (user and item ids are never one-hot, as in RecBole);
- token_seq: one 0/1 column per id (multi-hot: the ids present in the row);
- float: one column with the value;
- float_seq: one column per position, up to the longest sequence.

Single-valued columns (ids, floats) are stored explicitly, zeros included, so a library that reads an absent
sparse entry as *missing* (XGBoost) sees the same values as one that reads it as 0 (LightGBM); one-hot and
multi-hot columns store their ones only. User and item columns are encoded once per id (``user_block``,
``item_block``) and gathered per row, so training rows, evaluation rows and candidate pairs of a ranking all go
through the same code and get identical rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from recforge.data.columns import SeqColumn
from recforge.data.features.fields import FeatureField, feature_fields

SOURCES = ("inter", "user", "item")  # column order: the interaction's context, then the user's, then the item's


class FeatureEncoder:
    """Turns columns of pairs into CSR feature rows.

    Args:
        dataset: the data set (any split: feature tables and vocabularies are shared).
        config: the run config (``convert_token_to_onehot``, ``token_num_threhold``, ``LABEL_FIELD``,
            ``eval_args``).

    Attributes:
        fields: the feature fields (``feature_fields`` order); the columns are grouped by source: the
            interaction's context columns, then the user's (the user id first), then the item's (the item id first).
        feature_names: one name per column (``field`` or ``field[token]`` / ``field[i]``).
        n_features: the number of columns.
    """

    def __init__(self, dataset, config: Mapping[str, Any]) -> None:
        self.uid_field, self.iid_field = dataset.uid_field, dataset.iid_field
        onehot = bool(config["convert_token_to_onehot"])
        limit = config["token_num_threhold"]
        self.fields = feature_fields(dataset, config)
        self._widths: dict[str, int] = {}
        self._onehot: set[str] = set()
        names: list[str] = []
        for field in self.fields:
            kind = field.type
            is_id = field.name in (self.uid_field, self.iid_field)
            if kind == "token_seq" or (kind == "token" and onehot and not is_id and dataset.num(field.name) <= limit):
                tokens = dataset.field2id_token[field.name]
                self._onehot.add(field.name)
                names.extend(f"{field.name}[{t}]" for t in tokens)
                self._widths[field.name] = len(tokens)
            elif kind == "float_seq":
                column = self._table(dataset, field.source)[field.name]
                width = int(column.lengths.max(initial=0))
                names.extend(f"{field.name}[{i}]" for i in range(width))
                self._widths[field.name] = width
            else:
                names.append(field.name)
                self._widths[field.name] = 1
        self.n_features = len(names)
        self._offsets: dict[str, int] = {}
        self._source_widths = dict.fromkeys(SOURCES, 0)
        self.feature_names = []
        for source in SOURCES:
            for field, start in zip(self.fields, np.cumsum([0, *self._widths.values()])[:-1], strict=True):
                if field.source == source:
                    self._offsets[field.name] = self._source_widths[source]
                    self._source_widths[source] += self._widths[field.name]
                    self.feature_names.extend(names[start : start + self._widths[field.name]])
        self.user_block = self._cached_block(dataset, "user", dataset.user_num, (onehot, limit))
        self.item_block = self._cached_block(dataset, "item", dataset.item_num, (onehot, limit))

    @staticmethod
    def _table(dataset, source: str) -> dict[str, Any]:
        return {"inter": dataset.inter_feat, "user": dataset.user_feat, "item": dataset.item_feat}[source] or {}

    def _cached_block(self, dataset, source: str, n_ids: int, settings: tuple) -> sp.csr_matrix:
        """``_id_block``, kept in ``dataset.derived`` (cached with the processed data set)."""
        derived = getattr(dataset, "derived", None)
        if derived is None:
            return self._id_block(dataset, source, n_ids)
        key = f"features/{source}/onehot={int(settings[0])}/limit={settings[1]}/n={self._source_widths[source]}"
        if f"{key}/indptr" not in derived:
            block = self._id_block(dataset, source, n_ids)
            derived.update({f"{key}/data": block.data, f"{key}/indices": block.indices, f"{key}/indptr": block.indptr})
        parts = (derived[f"{key}/data"], derived[f"{key}/indices"], derived[f"{key}/indptr"])
        return sp.csr_matrix(parts, shape=(n_ids, self._source_widths[source]))

    def _id_block(self, dataset, source: str, n_ids: int) -> sp.csr_matrix:
        """[n_ids, n_features] rows of the ``source`` fields of every id (the other columns empty)."""
        table = self._table(dataset, source)
        id_field = self.uid_field if source == "user" else self.iid_field
        parts = []
        for field in self.fields:
            if field.source != source:
                continue
            column = np.arange(n_ids, dtype=np.int64) if field.name == id_field else table[field.name]
            parts.append(self._encode(field, column))
        return _assemble(parts, n_ids, self._source_widths[source])

    def _encode(self, field: FeatureField, column) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, columns, values) of one field's block for the rows of ``column``."""
        offset = self._offsets[field.name]
        if isinstance(column, SeqColumn):
            rows = np.repeat(np.arange(len(column)), column.lengths)
            if field.type == "token_seq":
                return rows, offset + column.values, np.ones(len(rows))
            positions = np.arange(len(column.values)) - np.repeat(column.offsets[:-1], column.lengths)
            return rows, offset + positions, column.values.astype(np.float64)
        values = np.asarray(column)
        rows = np.arange(len(values))
        if field.name in self._onehot:
            return rows, offset + values, np.ones(len(values))
        return rows, np.full(len(values), offset), values.astype(np.float64)

    def matrix(self, columns: Mapping[str, Any]) -> sp.csr_matrix:
        """CSR [n, n_features] rows of the pairs in ``columns`` (NumPy arrays / tensors / SeqColumns): the user
        and item ids, plus the interaction's context columns when they are features."""
        users = _numpy(columns[self.uid_field])
        items = _numpy(columns[self.iid_field])
        parts = []
        for field in self.fields:
            if field.source != "inter":
                continue
            if field.name not in columns:
                raise KeyError(
                    f"feature column {field.name!r} is missing: candidate pairs have no interaction context; "
                    "rank with features of users and items only (see recforge.data.features.fields)"
                )
            column = columns[field.name]
            parts.append(self._encode(field, column if isinstance(column, SeqColumn) else _numpy(column)))
        context = _assemble(parts, len(users), self._source_widths["inter"])
        return sp.hstack([context, self.user_block[users], self.item_block[items]], format="csr")

    def pairs(self, users: np.ndarray, items: np.ndarray) -> sp.csr_matrix:
        """CSR rows of every (user, item) in ``users`` x ``items``, user-major: [len(users) * len(items), n]."""
        return self.matrix({self.uid_field: np.repeat(users, len(items)), self.iid_field: np.tile(items, len(users))})


def _numpy(values) -> np.ndarray:
    return values.cpu().numpy() if hasattr(values, "cpu") else np.asarray(values)


def _assemble(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], n_rows: int, n_cols: int) -> sp.csr_matrix:
    """One CSR matrix from (rows, cols, values) parts; explicit zeros are kept."""
    if not parts:
        return sp.csr_matrix((n_rows, n_cols))
    rows = np.concatenate([p[0] for p in parts])
    cols = np.concatenate([p[1] for p in parts])
    values = np.concatenate([p[2] for p in parts])
    order = np.lexsort((cols, rows))
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return sp.csr_matrix((values[order], cols[order], indptr), shape=(n_rows, n_cols))
