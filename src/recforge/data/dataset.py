"""The interaction data set: atomic files loaded, filtered and remapped to integer ids.

Processing order follows RecBole: drop rows without a user or item id -> ``filter_inter_by_user_or_item``
-> ``rm_dup_inter`` -> ``val_interval`` -> ``user/item_inter_num_interval`` (to a fixed point) -> remap tokens
to ids (id 0 = ``[PAD]``, ids by first appearance, interactions first) -> feature tables indexed by id ->
``threshold`` labels -> NaN floats filled with the column mean.

Columns are NumPy arrays (ids int64, floats float64) or ragged ``SeqColumn``s; ``inter_feat`` holds one entry
per interaction. ``user_feat`` / ``item_feat`` hold one row per id (row 0 is padding).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from recforge.data.atomic import AtomicTable, Column, SeqColumn, TokenColumn, read_atomic
from recforge.data.intervals import parse_intervals, within
from recforge.data.registry import resolve_dataset_dir
from recforge.data.vocabulary import assign_ids, unify
from recforge.errors import ConfigError, DataError

logger = logging.getLogger("recforge")

FEATURE_SUFFIXES = ("inter", "user", "item")


def take(columns: Mapping[str, Column], rows: np.ndarray) -> dict[str, Column]:
    """Select ``rows`` (int indices or a boolean mask) of every column."""
    if rows.dtype == bool:
        rows = np.flatnonzero(rows)
    out: dict[str, Column] = {}
    for name, col in columns.items():
        if isinstance(col, TokenColumn):
            out[name] = TokenColumn(col.codes[rows], col.vocabulary)
        elif isinstance(col, SeqColumn):
            out[name] = col.take(rows)
        else:
            out[name] = col[rows]
    return out


class Dataset:
    """An interaction data set with RecBole's public attributes.

    Attributes:
        dataset_name: the data set's name.
        dataset_path: the folder its atomic files were read from.
        uid_field, iid_field, rating_field, time_field, label_field: column names from the config.
        inter_feat: ``{field: column}``, one row per interaction.
        user_feat, item_feat: ``{field: column}`` with row ``i`` describing id ``i``, or None when not loaded.
        field2type: ``{field: "token" | "token_seq" | "float" | "float_seq"}``.
        field2id_token: ``{field: object array}``, id -> token (index 0 is ``[PAD]``).
        user_num, item_num: number of ids including padding (as in RecBole).
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self.dataset_name: str = config["dataset"]
        self.uid_field: str = config["USER_ID_FIELD"]
        self.iid_field: str = config["ITEM_ID_FIELD"]
        self.rating_field: str | None = config["RATING_FIELD"]
        self.time_field: str | None = config["TIME_FIELD"]
        self.label_field: str = config["LABEL_FIELD"]
        self.dataset_path: Path = resolve_dataset_dir(self.dataset_name, config["data_path"])
        self.field2type: dict[str, str] = {}
        self.field2source: dict[str, str] = {}
        self.field2id_token: dict[str, np.ndarray] = {}
        self._token2id_cache: dict[str, dict[str, int]] = {}
        self.user_feat: dict[str, Column] | None = None
        self.item_feat: dict[str, Column] | None = None
        self._build()

    # -- loading -----------------------------------------------------------------------------------
    def _file(self, suffix: str) -> Path:
        return self.dataset_path / f"{self.dataset_name}.{suffix}"

    def _load(self, suffix: str, required: bool = False) -> AtomicTable | None:
        load_col = self.config["load_col"]
        unload = (self.config["unload_col"] or {}).get(suffix) or ()
        path = self._file(suffix)
        if load_col is None:
            if not path.exists():
                if required:
                    raise DataError(f"{path}: file not found (data set '{self.dataset_name}' needs a .{suffix} file)")
                return None
            columns = None
        elif suffix not in load_col:
            if required:
                raise ConfigError(f"config key 'load_col' has no entry '{suffix}'; the .{suffix} file is required")
            return None
        else:
            wanted = load_col[suffix]
            columns = None if wanted is True else list(wanted if isinstance(wanted, list) else [wanted])
            if not path.exists():
                raise DataError(
                    f"{path}: file not found, but load_col.{suffix} asks for it; "
                    f"remove '{suffix}' from load_col or add the file"
                )
        table = read_atomic(
            path,
            columns,
            exclude=list(unload),
            field_separator=self.config["field_separator"],
            seq_separator=self.config["seq_separator"],
        )
        for name, ftype in table.types.items():
            if name in self.field2type and name not in (self.uid_field, self.iid_field):
                raise DataError(f"{path}: column {name!r} is also in the .{self.field2source[name]} file")
            self.field2type.setdefault(name, ftype)
            self.field2source.setdefault(name, suffix)
        return table

    def _require_token(self, table: AtomicTable, field: str, role: str) -> None:
        if field not in table.columns:
            raise DataError(
                f"{table.path}: no column {field!r} ({role}); the loaded columns are "
                f"{', '.join(table.columns) or 'none'} (check {role} and load_col)"
            )
        if table.types[field] != "token":
            raise DataError(f"{table.path}: column {field!r} ({role}) must have type token, not {table.types[field]}")

    def _build(self) -> None:
        inter = self._load("inter", required=True)
        self._require_token(inter, self.uid_field, "USER_ID_FIELD")
        self._require_token(inter, self.iid_field, "ITEM_ID_FIELD")
        users = self._load("user")
        items = self._load("item")
        if users is not None:
            self._require_token(users, self.uid_field, "USER_ID_FIELD")
        if items is not None:
            self._require_token(items, self.iid_field, "ITEM_ID_FIELD")

        inter_cols = dict(inter.columns)
        user_cols = dict(users.columns) if users is not None else None
        item_cols = dict(items.columns) if items is not None else None
        # One code space per id field across the files that hold it.
        for field, feat in ((self.uid_field, user_cols), (self.iid_field, item_cols)):
            if feat is None:
                continue
            merged, (map_inter, map_feat) = unify([inter_cols[field].vocabulary, feat[field].vocabulary])
            inter_cols[field] = _recode(inter_cols[field], map_inter, merged)
            feat[field] = _recode(feat[field], map_feat, merged)

        n_read = len(inter)
        keep = self._filter(inter_cols, user_cols, item_cols, inter.path)
        inter_cols = take(inter_cols, keep)
        if not len(inter_cols[self.uid_field]):
            raise DataError(
                f"no interactions left after filtering {self._file('inter')} ({n_read} read); "
                "loosen val_interval, user_inter_num_interval / item_inter_num_interval or rm_dup_inter"
            )
        self._remap(inter_cols, user_cols, item_cols)
        self._apply_threshold()
        self._fill_nan()

    # -- filtering ---------------------------------------------------------------------------------
    def _filter(
        self, inter: dict[str, Column], users: dict[str, Column] | None, items: dict[str, Column] | None, path: Path
    ) -> np.ndarray:
        """Return the mask of interactions that survive every filter; logs what each filter removed."""
        uid, iid = inter[self.uid_field].codes, inter[self.iid_field].codes
        keep = (uid >= 0) & (iid >= 0)
        self._report("rows without a user or item id", keep, len(keep))

        if self.config["filter_inter_by_user_or_item"]:
            for field, feat, codes in ((self.uid_field, users, uid), (self.iid_field, items, iid)):
                if feat is None:
                    continue
                known = np.zeros(len(feat[field].vocabulary), dtype=bool)
                known[feat[field].codes[feat[field].codes >= 0]] = True
                before = int(keep.sum())
                keep &= known[np.maximum(codes, 0)]
                self._report(
                    f"interactions whose {field} is not in the .{self.field2source.get(field, '?')} file", keep, before
                )

        if self.config["rm_dup_inter"] is not None:
            before = int(keep.sum())
            keep &= self._first_or_last(inter, keep)
            self._report(f"duplicate interactions (rm_dup_inter: {self.config['rm_dup_inter']})", keep, before)

        for field, text in (self.config["val_interval"] or {}).items():
            intervals = parse_intervals(text, f"val_interval.{field}")
            if field not in inter:
                raise ConfigError(f"config key 'val_interval' names {field!r}, which is not a loaded column of {path}")
            if not isinstance(inter[field], np.ndarray):
                raise ConfigError(f"config key 'val_interval' needs a float column; {field!r} is a token column")
            before = int(keep.sum())
            keep &= within(inter[field], intervals)
            self._report(f"interactions outside val_interval {field}: {text}", keep, before)

        user_iv = parse_intervals(self.config["user_inter_num_interval"], "user_inter_num_interval")
        item_iv = parse_intervals(self.config["item_inter_num_interval"], "item_inter_num_interval")
        if user_iv or item_iv:
            before = int(keep.sum())
            keep = self._filter_by_inter_num(uid, iid, keep, user_iv, item_iv)
            self._report("interactions of users/items outside the inter_num intervals", keep, before)
        return keep

    @staticmethod
    def _report(what: str, keep: np.ndarray, before: int) -> None:
        removed = before - int(keep.sum())
        if removed:
            logger.info("filtering removed %d %s", removed, what)

    def _first_or_last(self, inter: dict[str, Column], keep: np.ndarray) -> np.ndarray:
        """Mask of the first (or last) occurrence of each (user, item) pair among kept rows, by time if loaded."""
        rows = np.flatnonzero(keep)
        if self.time_field in inter and isinstance(inter[self.time_field], np.ndarray):
            rows = rows[np.argsort(inter[self.time_field][rows], kind="stable")]
        uid, iid = inter[self.uid_field].codes[rows], inter[self.iid_field].codes[rows]
        pair = uid * (int(iid.max(initial=0)) + 1) + iid
        if self.config["rm_dup_inter"] == "last":
            pair = pair[::-1]
            rows = rows[::-1]
        _, first = np.unique(pair, return_index=True)
        out = np.zeros(len(keep), dtype=bool)
        out[rows[first]] = True
        return out

    @staticmethod
    def _filter_by_inter_num(uid: np.ndarray, iid: np.ndarray, keep: np.ndarray, user_iv, item_iv) -> np.ndarray:
        """Drop users/items whose interaction count is outside their interval, repeated to a fixed point."""
        keep = keep.copy()
        n_users, n_items = int(uid.max(initial=-1)) + 1, int(iid.max(initial=-1)) + 1
        while True:
            u, i = uid[keep], iid[keep]
            banned = np.zeros(len(keep), dtype=bool)
            if user_iv:
                counts = np.bincount(u, minlength=n_users).astype(np.float64)
                bad_user = (counts > 0) & ~within(counts, user_iv)
                banned[keep] |= bad_user[u]
            if item_iv:
                counts = np.bincount(i, minlength=n_items).astype(np.float64)
                bad_item = (counts > 0) & ~within(counts, item_iv)
                banned[keep] |= bad_item[i]
            if not banned.any():
                return keep
            keep &= ~banned

    # -- remapping ---------------------------------------------------------------------------------
    def _remap(
        self, inter: dict[str, Column], users: dict[str, Column] | None, items: dict[str, Column] | None
    ) -> None:
        feats = {"inter": inter, "user": users, "item": items}
        for field, feat_name in ((self.uid_field, "user"), (self.iid_field, "item")):
            feat = feats[feat_name]
            parts = [inter[field].codes] + ([feat[field].codes] if feat is not None else [])
            ids, id2token = assign_ids(parts, inter[field].vocabulary)
            self.field2id_token[field] = id2token
            inter[field] = ids[0]
            if feat is not None:
                feat[field] = ids[1]
        for feat in feats.values():
            if feat is None:
                continue
            for field, col in list(feat.items()):
                if field in (self.uid_field, self.iid_field):
                    continue
                if isinstance(col, TokenColumn):
                    (ids,), id2token = assign_ids([col.codes], col.vocabulary)
                    feat[field] = ids
                    self.field2id_token[field] = id2token
                elif isinstance(col, SeqColumn) and col.vocabulary is not None:
                    (ids,), id2token = assign_ids([col.values], col.vocabulary)
                    feat[field] = SeqColumn(col.offsets, ids, None)
                    self.field2id_token[field] = id2token
        self.inter_feat: dict[str, Column] = inter
        self.user_feat = self._index_by_id(users, self.uid_field, self.user_num, "user")
        self.item_feat = self._index_by_id(items, self.iid_field, self.item_num, "item")

    def _index_by_id(self, feat: dict[str, Column] | None, field: str, n: int, suffix: str) -> dict[str, Column] | None:
        """Reorder a feature table so that row i describes id i; missing ids get 0 / NaN / empty rows."""
        if feat is None:
            return None
        ids = feat[field]
        valid = np.flatnonzero(ids > 0)
        ids_valid = ids[valid]
        _, first = np.unique(ids_valid, return_index=True)
        if len(first) < len(ids_valid):
            logger.warning(
                "%s: %d repeated %s ids; the first row of each is used",
                self._file(suffix),
                len(ids_valid) - len(first),
                field,
            )
        rows = valid[first]
        row_of_id = np.full(n, -1, dtype=np.int64)
        row_of_id[ids[rows]] = rows
        present = row_of_id >= 0
        out: dict[str, Column] = {field: np.arange(n, dtype=np.int64)}
        for name, col in feat.items():
            if name == field:
                continue
            if isinstance(col, SeqColumn):
                lengths = np.zeros(n, dtype=np.int64)
                lengths[present] = col.lengths[row_of_id[present]]
                gathered = col.take(row_of_id[present])
                offsets = np.zeros(n + 1, dtype=np.int64)
                np.cumsum(lengths, out=offsets[1:])
                out[name] = SeqColumn(offsets, gathered.values, col.vocabulary)
            else:
                fill = 0 if col.dtype.kind in "iu" else np.nan
                values = np.full(n, fill, dtype=col.dtype)
                values[present] = col[row_of_id[present]]
                out[name] = values
        return out

    def _apply_threshold(self) -> None:
        threshold = self.config["threshold"]
        if not threshold:
            return
        if len(threshold) != 1:
            raise ConfigError(f"config key 'threshold' takes one column, e.g. {{rating: 4}}; got {threshold}")
        ((field, value),) = threshold.items()
        column = self.inter_feat.get(field)
        if not isinstance(column, np.ndarray) or self.field2type.get(field) != "float":
            raise ConfigError(
                f"config key 'threshold' names {field!r}, which is not a loaded float column of the .inter file"
            )
        self.inter_feat[self.label_field] = (column >= value).astype(np.float64)
        self.field2type[self.label_field] = "float"
        self.field2source[self.label_field] = "inter"
        del self.inter_feat[field]
        del self.field2type[field]

    def _fill_nan(self) -> None:
        for feat in (self.inter_feat, self.user_feat, self.item_feat):
            for col in (feat or {}).values():
                if isinstance(col, np.ndarray) and col.dtype.kind == "f":
                    missing = np.isnan(col)
                    if missing.any() and not missing.all():
                        col[missing] = col[~missing].mean()

    # -- public API --------------------------------------------------------------------------------
    @property
    def user_num(self) -> int:
        """Number of user ids, padding included."""
        return len(self.field2id_token[self.uid_field])

    @property
    def item_num(self) -> int:
        """Number of item ids, padding included."""
        return len(self.field2id_token[self.iid_field])

    @property
    def inter_num(self) -> int:
        return len(self.inter_feat[self.uid_field])

    def __len__(self) -> int:
        return self.inter_num

    def num(self, field: str) -> int:
        """Number of ids of a token field (padding included) or 1 for a float field, as in RecBole."""
        if field in self.field2id_token:
            return len(self.field2id_token[field])
        if field in self.field2type:
            return 1
        raise KeyError(f"unknown field {field!r}")

    @property
    def sparsity(self) -> float:
        return 1.0 - self.inter_num / ((self.user_num - 1) * (self.item_num - 1))

    def id2token(self, field: str, ids: Any) -> Any:
        """Tokens of ``ids`` (an int or an array of ints)."""
        return self.field2id_token[field][ids]

    def token2id(self, field: str, tokens: Any) -> Any:
        """Ids of ``tokens`` (a str or a sequence of str); an unknown token is a KeyError naming it."""
        table = self._token2id_cache.get(field)
        if table is None:
            table = {t: i for i, t in enumerate(self.field2id_token[field])}
            self._token2id_cache[field] = table
        try:
            if isinstance(tokens, str):
                return table[tokens]
            return np.array([table[t] for t in tokens], dtype=np.int64)
        except KeyError as exc:
            raise KeyError(f"token {exc.args[0]!r} is not in field {field!r}") from None

    def inter_matrix(self, form: str = "coo", value_field: str | None = None):
        """The user x item matrix (scipy.sparse, shape [user_num, item_num]); repeated pairs add up.

        Values are 1, or the column ``value_field``.
        """
        import scipy.sparse as sp

        rows, cols = self.inter_feat[self.uid_field], self.inter_feat[self.iid_field]
        if value_field is None:
            data = np.ones(len(rows), dtype=np.float32)
        else:
            if value_field not in self.inter_feat:
                raise KeyError(f"value_field {value_field!r} is not a column of inter_feat")
            data = np.asarray(self.inter_feat[value_field], dtype=np.float32)
        matrix = sp.coo_matrix((data, (rows, cols)), shape=(self.user_num, self.item_num))
        if form == "coo":
            return matrix
        if form == "csr":
            return matrix.tocsr()
        raise ValueError(f"form must be 'coo' or 'csr', not {form!r}")

    def copy(self, new_inter_feat: dict[str, Column]) -> Dataset:
        """A dataset sharing vocabularies and feature tables, with other interactions (used by splits)."""
        clone = copy.copy(self)
        clone.inter_feat = new_inter_feat
        return clone

    def build(self) -> list[Dataset]:
        """Split into ``[train, valid, test]`` datasets following ``eval_args`` (see ``recforge.data.split``)."""
        from recforge.data.split import split_dataset

        return split_dataset(self)

    def __str__(self) -> str:
        return (
            f"{self.dataset_name}: {self.user_num - 1} users, {self.item_num - 1} items, "
            f"{self.inter_num} interactions, sparsity {self.sparsity:.4%}; fields: {', '.join(self.field2type)}"
        )

    __repr__ = __str__


def _recode(column: TokenColumn, mapping: np.ndarray, vocabulary: np.ndarray) -> TokenColumn:
    codes = np.where(column.codes >= 0, mapping[np.maximum(column.codes, 0)], -1)
    return TokenColumn(codes, vocabulary)
