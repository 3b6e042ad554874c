"""The interaction data set: atomic files loaded, filtered and remapped to integer ids, RecBole's way.

Processing, in RecBole's order:

1. load ``.inter`` (and ``.user`` / ``.item`` per ``load_col``); one code space per id group (an id field and
   its ``alias_of_*`` fields, over every file that has them);
2. filters (``recforge.data.filters``): rows without ids, ``rm_dup_inter``, ``val_interval`` (any file),
   ``filter_inter_by_user_or_item``, ``user_inter_num_interval`` / ``item_inter_num_interval`` to a fixed point;
3. ids: 0 is ``[PAD]``; each group gets ids by first appearance (interactions first, then feature files,
   then alias fields); other token fields get their own vocabulary;
4. feature tables indexed by id; missing floats become the column mean, missing tokens 0, missing sequences
   empty; ``threshold`` turns a column into 0/1 labels; ``normalize_field`` / ``normalize_all`` min-max scale
   float columns; ``preload_weight`` builds id-indexed matrices.

``unused_col`` columns stay available until the split and are dropped from its parts.

Columns are NumPy arrays (ids int64, floats float64) or ragged ``SeqColumn``s. ``inter_feat`` has one row per
interaction; ``user_feat`` / ``item_feat`` one row per id (row 0 is padding).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from recforge.config.intervals import parse_intervals
from recforge.data import filters
from recforge.data.atomic import AtomicTable, Column, SeqColumn, TokenColumn, read_atomic
from recforge.data.registry import resolve_dataset_dir
from recforge.data.vocabulary import PAD, assign_ids, unify
from recforge.errors import ConfigError, DataError
from recforge.utils.arrays import first_occurrences

logger = logging.getLogger("recforge")

FEATURE_FILES = ("inter", "user", "item")

# Config keys whose values change the processed data (they key the processed-data cache).
PROCESSING_KEYS = (
    "USER_ID_FIELD",
    "ITEM_ID_FIELD",
    "RATING_FIELD",
    "TIME_FIELD",
    "LABEL_FIELD",
    "load_col",
    "unload_col",
    "field_separator",
    "seq_separator",
    "rm_dup_inter",
    "val_interval",
    "filter_inter_by_user_or_item",
    "user_inter_num_interval",
    "item_inter_num_interval",
    "alias_of_user_id",
    "alias_of_item_id",
    "threshold",
    "normalize_field",
    "normalize_all",
    "preload_weight",
)


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
        field2source: ``{field: "inter" | "user" | "item"}`` (the file a field was read from).
        field2id_token: ``{field: object array}``, id -> token (index 0 is ``[PAD]``); alias fields share it.
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
        self.inter_feat: dict[str, Column] = {}
        self.user_feat: dict[str, Column] | None = None
        self.item_feat: dict[str, Column] | None = None
        self._preloaded_weight: dict[str, np.ndarray] = {}
        self._token2id_cache: dict[str, dict[str, int]] = {}
        self._removed_so_far: dict[str, int] = {}
        self.processing_log: list[str] = []
        from recforge.data.cache import DatasetCache

        cache = DatasetCache.for_dataset(self) if config["data_cache"] else None
        if cache is None or not cache.restore(self):
            self._build()
            if cache is not None:
                cache.save(self)

    # -- which files and groups --------------------------------------------------------------------
    def _file(self, suffix: str) -> Path:
        return self.dataset_path / f"{self.dataset_name}.{suffix}"

    def source_files(self) -> list[Path]:
        """The atomic files this config reads (for the processed-data cache)."""
        load_col = self.config["load_col"]
        suffixes = FEATURE_FILES if load_col is None else [s for s in FEATURE_FILES if s in load_col]
        return [self._file(s) for s in suffixes if self._file(s).exists() or s == "inter"]

    def id_groups(self) -> dict[str, list[str]]:
        """The fields sharing each id vocabulary: ``{uid_field: [uid_field, *alias_of_user_id], ...}``."""
        groups = {
            self.uid_field: [self.uid_field, *(self.config["alias_of_user_id"] or [])],
            self.iid_field: [self.iid_field, *(self.config["alias_of_item_id"] or [])],
        }
        for name, fields in groups.items():
            for other, other_fields in groups.items():
                shared = set(fields) & set(other_fields)
                if other != name and shared:
                    raise ConfigError(f"field(s) {sorted(shared)} are aliases of both {name} and {other}")
        return {name: list(dict.fromkeys(fields)) for name, fields in groups.items()}

    # -- loading -----------------------------------------------------------------------------------
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
        users, items = self._load("user"), self._load("item")
        if users is not None:
            self._require_token(users, self.uid_field, "USER_ID_FIELD")
        if items is not None:
            self._require_token(items, self.iid_field, "ITEM_ID_FIELD")
        tables: dict[str, dict[str, Column] | None] = {
            "inter": dict(inter.columns),
            "user": dict(users.columns) if users is not None else None,
            "item": dict(items.columns) if items is not None else None,
        }
        groups = self.id_groups()
        self._share_code_spaces(tables, groups)
        n_read = len(inter)
        keeps = self._filter(tables)
        for name, keep in keeps.items():
            tables[name] = take(tables[name], keep)
        for name, table in tables.items():
            if table is not None and not len(next(iter(table.values()))):
                raise DataError(
                    f"no rows left in {self._file(name)} after filtering ({n_read} interactions read); loosen "
                    "val_interval, user_inter_num_interval / item_inter_num_interval or rm_dup_inter"
                )
        self._remap(tables, groups)
        self.inter_feat = tables["inter"]
        self.user_feat = self._index_by_id(tables["user"], self.uid_field, self.user_num, "user")
        self.item_feat = self._index_by_id(tables["item"], self.iid_field, self.item_num, "item")
        self._fill_nan()
        self._apply_threshold()
        self._normalize()
        self._preload_weights()

    def _share_code_spaces(self, tables: dict[str, dict[str, Column] | None], groups: dict[str, list[str]]) -> None:
        """Recode the token columns of each id group into one code space (needed to filter across files)."""
        for fields in groups.values():
            members = _members(tables, fields)
            for _, field in members:
                if self.field2type[field] not in ("token", "token_seq"):
                    raise ConfigError(
                        f"alias field {field!r} must be a token or token_seq column, not {self.field2type[field]}"
                    )
            if len(members) < 2:
                continue
            merged, mappings = unify([tables[n][f].vocabulary for n, f in members])
            for (name, field), mapping in zip(members, mappings, strict=True):
                tables[name][field] = _recode(tables[name][field], mapping, merged)

    # -- filtering ---------------------------------------------------------------------------------
    def _filter(self, tables: dict[str, dict[str, Column] | None]) -> dict[str, np.ndarray]:
        """Masks of the rows of each table that survive every filter; logs what each filter removed."""
        config = self.config
        inter, users, items = tables["inter"], tables["user"], tables["item"]
        keep = {name: np.ones(len(next(iter(t.values()))), dtype=bool) for name, t in tables.items() if t}

        keep["inter"] &= filters.ids_present(inter, self.uid_field) & filters.ids_present(inter, self.iid_field)
        for name, field in (("user", self.uid_field), ("item", self.iid_field)):
            if tables[name] is not None:
                keep[name] &= filters.ids_present(tables[name], field)
        self._report("rows without a user or item id", keep)

        if config["rm_dup_inter"] is not None:
            keep["inter"] &= filters.first_or_last(
                inter, keep["inter"], self.uid_field, self.iid_field, self.time_field, config["rm_dup_inter"]
            )
            self._report(f"repeated interactions (rm_dup_inter: {config['rm_dup_inter']})", keep)

        val_interval = config["val_interval"] or {}
        filters.check_value_filters(val_interval, self.field2type)
        for field, allowed in val_interval.items():
            for name, table in tables.items():
                if table is not None and field in table:
                    keep[name] &= filters.value_mask(table[field], allowed, field)
        if val_interval:
            self._report(f"rows outside val_interval {val_interval}", keep)

        if config["filter_inter_by_user_or_item"]:
            for name, field in (("user", self.uid_field), ("item", self.iid_field)):
                size = len(inter[field].vocabulary)
                known = filters.known_ids(tables[name], field, keep.get(name), size)
                if known is not None:
                    keep["inter"] &= known[np.maximum(inter[field].codes, 0)]
            self._report("interactions whose user or item is missing from the .user / .item file", keep)

        user_iv = parse_intervals(config["user_inter_num_interval"], "user_inter_num_interval")
        item_iv = parse_intervals(config["item_inter_num_interval"], "item_inter_num_interval")
        if user_iv or item_iv:
            user_ids = users[self.uid_field].codes if users is not None else None
            item_ids = items[self.iid_field].codes if items is not None else None
            kept, user_keep, item_keep = filters.inter_num_fixed_point(
                inter[self.uid_field].codes,
                inter[self.iid_field].codes,
                keep["inter"],
                user_iv,
                item_iv,
                np.where(keep["user"], user_ids, -1) if users is not None else None,
                np.where(keep["item"], item_ids, -1) if items is not None else None,
            )
            keep["inter"] = kept
            if user_keep is not None:
                keep["user"] &= user_keep
            if item_keep is not None:
                keep["item"] &= item_keep
            self._report("rows of users / items outside user_inter_num_interval / item_inter_num_interval", keep)
        return keep

    def _report(self, what: str, keep: dict[str, np.ndarray]) -> None:
        """Log how many rows the latest filter removed from each file (kept in ``processing_log``)."""
        counts = {name: int((~mask).sum()) for name, mask in keep.items()}
        removed = {name: counts[name] - self._removed_so_far.get(name, 0) for name in counts}
        self._removed_so_far = counts
        shown = ", ".join(f"{n} from .{name}" for name, n in removed.items() if n)
        if shown:
            line = f"filtering removed {shown}: {what}"
            self.processing_log.append(line)
            logger.info("%s", line)

    # -- remapping ---------------------------------------------------------------------------------
    def _remap(self, tables: dict[str, dict[str, Column] | None], groups: dict[str, list[str]]) -> None:
        grouped: set[str] = set()
        for fields in groups.values():
            members = _members(tables, fields)
            grouped.update(fields)
            if members:
                self._remap_together(tables, members)
        for name in FEATURE_FILES:
            for field, column in list((tables[name] or {}).items()):
                if (
                    field not in grouped
                    and isinstance(column, (TokenColumn, SeqColumn))
                    and (not isinstance(column, SeqColumn) or column.vocabulary is not None)
                ):
                    self._remap_together(tables, [(name, field)])

    def _remap_together(self, tables: dict[str, dict[str, Column] | None], members: list[tuple[str, str]]) -> None:
        """Assign ids over the listed (table, field) columns in order; they share one vocabulary."""
        columns = [tables[name][field] for name, field in members]
        codes = [c.codes if isinstance(c, TokenColumn) else c.values for c in columns]
        ids, id2token = assign_ids(codes, columns[0].vocabulary)
        for (name, field), column, new in zip(members, columns, ids, strict=True):
            tables[name][field] = new if isinstance(column, TokenColumn) else SeqColumn(column.offsets, new, None)
            self.field2id_token[field] = id2token

    def _index_by_id(self, feat: dict[str, Column] | None, field: str, n: int, suffix: str) -> dict[str, Column] | None:
        """Reorder a feature table so that row i describes id i; ids without a row get missing values."""
        if feat is None:
            return None
        ids = feat[field]
        valid = np.flatnonzero(ids > 0)
        ids_valid = ids[valid]
        first = first_occurrences(ids_valid)
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
                offsets = np.zeros(n + 1, dtype=np.int64)
                np.cumsum(lengths, out=offsets[1:])
                out[name] = SeqColumn(offsets, col.take(row_of_id[present]).values, col.vocabulary)
            else:
                values = np.full(n, 0 if col.dtype.kind in "iu" else np.nan, dtype=col.dtype)
                values[present] = col[row_of_id[present]]
                out[name] = values
        return out

    # -- values ------------------------------------------------------------------------------------
    def _tables(self) -> list[dict[str, Column]]:
        return [t for t in (self.inter_feat, self.user_feat, self.item_feat) if t is not None]

    def _fill_nan(self) -> None:
        for table in self._tables():
            for col in table.values():
                if isinstance(col, np.ndarray) and col.dtype.kind == "f":
                    missing = np.isnan(col)
                    if missing.any() and not missing.all():
                        col[missing] = col[~missing].mean()

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

    def _normalize(self) -> None:
        """Min-max scale float / float_seq columns to [0, 1]; a constant column becomes 1.0 (RecBole's rule)."""
        fields_cfg, normalize_all = self.config["normalize_field"], self.config["normalize_all"]
        if fields_cfg and normalize_all:
            raise ConfigError("normalize_field and normalize_all cannot both be set; use one of them")
        if fields_cfg:
            for field in fields_cfg:
                if field not in self.field2type:
                    raise ConfigError(f"config key 'normalize_field' names {field!r}, which is not a loaded column")
            fields = [f for f in fields_cfg if self.field2type[f] in ("float", "float_seq")]
            for field in set(fields_cfg) - set(fields):
                logger.warning(
                    "normalize_field: %s is a %s column and is not normalised", field, self.field2type[field]
                )
        elif normalize_all:
            fields = [f for f, t in self.field2type.items() if t in ("float", "float_seq")]
        else:
            return
        for field in fields:
            for table in self._tables():
                column = table.get(field)
                if column is None:
                    continue
                values = column.values if isinstance(column, SeqColumn) else column
                low, high = (values.min(), values.max()) if len(values) else (0.0, 0.0)
                if high == low:
                    logger.warning("all values of %s are equal; normalised to 1.0", field)
                    scaled = np.ones_like(values, dtype=np.float64)
                else:
                    scaled = (values - low) / (high - low)
                table[field] = SeqColumn(column.offsets, scaled, None) if isinstance(column, SeqColumn) else scaled

    def _preload_weights(self) -> None:
        tables = {"inter": self.inter_feat, "user": self.user_feat, "item": self.item_feat}
        for id_field, value_field in (self.config["preload_weight"] or {}).items():
            for field in (id_field, value_field):
                if field not in self.field2type:
                    raise ConfigError(f"config key 'preload_weight' names {field!r}, which is not a loaded column")
            table = tables[self.field2source[value_field]]
            if table is None or id_field not in table:
                raise ConfigError(
                    f"preload_weight: {id_field!r} and {value_field!r} must be columns of the same file "
                    f"({value_field!r} is in the .{self.field2source[value_field]} file)"
                )
            if self.field2type[id_field] != "token" or self.field2type[value_field] not in ("float", "float_seq"):
                raise ConfigError(
                    f"preload_weight maps a token field to a float / float_seq field, not "
                    f"{self.field2type[id_field]} -> {self.field2type[value_field]}"
                )
            ids, values = table[id_field], table[value_field]
            if isinstance(values, SeqColumn):
                matrix = np.zeros((self.num(id_field), int(values.lengths.max(initial=0))))
                matrix[ids] = values.padded()
            else:
                matrix = np.zeros(self.num(id_field))
                matrix[ids] = values
            self._preloaded_weight[id_field] = matrix

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
        return 1.0 - self.inter_num / max((self.user_num - 1) * (self.item_num - 1), 1)

    @property
    def item_counts(self) -> np.ndarray:
        """Interactions per item id, [item_num] int64."""
        return np.bincount(self.inter_feat[self.iid_field], minlength=self.item_num)

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

    def get_preload_weight(self, field: str) -> np.ndarray:
        """The ``preload_weight`` matrix of ``field``: row ``i`` is id ``i``'s vector (row 0: zeros)."""
        if field not in self._preloaded_weight:
            raise KeyError(f"field {field!r} is not in preload_weight")
        return self._preloaded_weight[field]

    def join(self, columns: Mapping[str, Any]) -> dict[str, Any]:
        """``columns`` (a batch: user and item ids) with the user's and item's feature columns added (RecBole's
        ``Dataset.join``); sequence features are padded to the longest row."""
        import torch

        out = dict(columns)
        for field, table in ((self.uid_field, self.user_feat), (self.iid_field, self.item_feat)):
            if table is None or field not in columns:
                continue
            ids = np.asarray(columns[field].cpu() if hasattr(columns[field], "cpu") else columns[field])
            for name, column in table.items():
                if name == field:
                    continue
                values = column.take(ids.reshape(-1)).padded() if isinstance(column, SeqColumn) else column[ids]
                tensor = torch.from_numpy(np.ascontiguousarray(values))
                out[name] = tensor.float() if tensor.is_floating_point() else tensor
        return out

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

    def drop_unused(self) -> None:
        """Drop the ``unused_col`` columns (RecBole does this after splitting)."""
        for suffix, fields in (self.config["unused_col"] or {}).items():
            table = {"inter": self.inter_feat, "user": self.user_feat, "item": self.item_feat}.get(suffix)
            for field in fields:
                if table is None or field not in table:
                    logger.warning("unused_col: %s is not a column of the .%s file", field, suffix)
                    continue
                table = dict(table)
                del table[field]
                setattr(self, f"{suffix}_feat", table)

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


def _members(tables: Mapping[str, dict[str, Column] | None], fields: list[str]) -> list[tuple[str, str]]:
    """The (file, field) pairs holding ``fields``, fields first, files in RecBole's order (inter, user, item)."""
    return [
        (name, field)
        for field in fields
        for name in FEATURE_FILES
        if tables[name] is not None and field in tables[name]
    ]


def _recode(column: Column, mapping: np.ndarray, vocabulary: np.ndarray) -> Column:
    if isinstance(column, SeqColumn):
        return SeqColumn(column.offsets, mapping[column.values], vocabulary)
    codes = np.where(column.codes >= 0, mapping[np.maximum(column.codes, 0)], -1)
    return TokenColumn(codes, vocabulary)


__all__ = ["PAD", "PROCESSING_KEYS", "Dataset", "take"]
