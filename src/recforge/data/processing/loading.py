"""Loading atomic files and giving ids, RecBole's way: ``AtomicLoading`` is a part of ``Dataset`` (a mixin).

1. ``.inter`` (and ``.user`` / ``.item`` per ``load_col``) are read; one code space per id group (an id field and
   its ``alias_of_*`` fields, over every file that has them), so rows can be filtered across files. With
   ``benchmark_filename: [train, valid, test]`` the interactions are ``<dataset>.train.inter``, ... one after
   another (same header required), each row labelled with its part in a hidden column (``PART``);
2. the filters run (``recforge.data.processing.filters.filter_tables``); the part column follows the rows that
   remain and is kept as ``derived["benchmark_part"]``, the split ``recforge.data.split.rules`` uses;
3. ids: 0 is ``[PAD]``; each group gets ids by first appearance (interactions first, then feature files, then
   alias fields); other token fields get their own vocabulary; feature tables are indexed by id;
4. the feature values are completed (``recforge.data.processing.feature_values``).

A data set with more files (a knowledge graph) extends ``_build``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from recforge.data.columns import Column, SeqColumn, TokenColumn, as_table, take
from recforge.data.files.atomic import AtomicTable, read_atomic, read_header
from recforge.data.processing import filters
from recforge.data.processing.field_keys import check_field_keys
from recforge.data.processing.vocabulary import assign_ids, unify
from recforge.errors import ConfigError, DataError
from recforge.utils.arrays import first_occurrences
from recforge.utils.memory import release_free_memory

logger = logging.getLogger("recforge")

FEATURE_FILES = ("inter", "user", "item")
PART = "[benchmark part]"  # the hidden .inter column of each row's part (benchmark_filename) while filtering
BENCHMARK_PART = "benchmark_part"  # its name in ``Dataset.derived``: int8 [inter_num], the index of the part


class AtomicLoading:
    """Reading the atomic files and turning tokens into ids (see the module docstring)."""

    files_read: tuple[str, ...] = FEATURE_FILES  # the atomic files that hold rows of tables, in RecBole's order

    # -- which files and groups --------------------------------------------------------------------
    def _file(self, suffix: str) -> Path:
        return self.dataset_path / f"{self.dataset_name}.{suffix}"

    def inter_files(self) -> list[Path]:
        """The interaction files: ``<dataset>.inter``, or ``<dataset>.<part>.inter`` per ``benchmark_filename`` part."""
        parts = self.config.get("benchmark_filename")
        if not parts:
            return [self._file("inter")]
        if (
            len(parts) not in (2, 3)
            or len(set(parts)) < len(parts)
            or any(not p or {"/", "\\"} & set(p) for p in parts)
        ):
            raise ConfigError(
                f"config key 'benchmark_filename': {parts} is not 2 or 3 distinct part names (train, [valid,] test) "
                "that can be part of a file name, e.g. [train, valid, test]"
            )
        return [self._file(f"{part}.inter") for part in parts]

    def additional_suffixes(self) -> list[str]:
        """``additional_feat_suffix``: the extra atomic files ``<dataset>.<suffix>``, each read per ``load_col`` into
        the table ``<suffix>_feat`` (RecBole's ``_load_additional_feat``), its rows as in the file."""
        return list(self.config.get("additional_feat_suffix") or [])

    def source_files(self) -> list[Path]:
        """The atomic files this config reads (for the processed-data cache)."""
        load_col = self.config["load_col"]
        read = [*self.files_read, *self.additional_suffixes()]
        suffixes = read if load_col is None else [s for s in read if s in load_col]
        files = []
        for suffix in suffixes:
            if suffix == "inter":
                files.extend(self.inter_files())
            elif self._file(suffix).exists():
                files.append(self._file(suffix))
        return files

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
        """The file ``<dataset>.<suffix>`` per ``load_col`` / ``unload_col`` (None when it is not read); the
        interactions of ``benchmark_filename``'s parts as one table with the hidden ``PART`` column."""
        load_col = self.config["load_col"]
        unload = (self.config["unload_col"] or {}).get(suffix) or ()
        if load_col is not None and suffix not in load_col:
            if required:
                raise ConfigError(f"config key 'load_col' has no entry '{suffix}'; the .{suffix} file is required")
            return None
        benchmark = suffix == "inter" and bool(self.config.get("benchmark_filename"))
        paths = self.inter_files() if suffix == "inter" else [self._file(suffix)]
        if benchmark:
            self._check_parts(paths)
        elif not paths[0].exists():
            if load_col is not None:
                raise DataError(
                    f"{paths[0]}: file not found, but load_col.{suffix} asks for it; "
                    f"remove '{suffix}' from load_col or add the file"
                )
            if required:
                raise DataError(f"{paths[0]}: file not found (data set '{self.dataset_name}' needs a .{suffix} file)")
            return None
        wanted = True if load_col is None else load_col[suffix]
        columns = None if wanted is True else list(wanted if isinstance(wanted, list) else [wanted])
        options = {"field_separator": self.config["field_separator"], "seq_separator": self.config["seq_separator"]}
        tables = [read_atomic(path, columns, exclude=list(unload), **options) for path in paths]
        table = concat_tables(tables) if benchmark else tables[0]
        if benchmark:
            sizes = [len(t) for t in tables]
            table.columns[PART] = np.repeat(np.arange(len(tables), dtype=np.int8), sizes)
        for name, ftype in table.types.items():
            if name in self.field2type and name not in (self.uid_field, self.iid_field):
                raise DataError(f"{table.path}: column {name!r} is also in the .{self.field2source[name]} file")
            self.field2type.setdefault(name, ftype)
            self.field2source.setdefault(name, suffix)
        return table

    def _check_parts(self, paths: list[Path]) -> None:
        """Every part file of ``benchmark_filename`` exists and has the first part's header (a DataError names the
        files)."""
        missing = [str(path) for path in paths if not path.is_file()]
        if missing:
            raise DataError(
                f"config key 'benchmark_filename' {self.config['benchmark_filename']}: part file(s) not found: "
                f"{', '.join(missing)} (each part <part> is read from {self.dataset_name}.<part>.inter)"
            )
        first = read_header(paths[0], self.config["field_separator"])
        for path in paths[1:]:
            header = read_header(path, self.config["field_separator"])
            if list(header.items()) != list(first.items()):
                raise DataError(
                    f"{path}: the header ({_show(header)}) differs from the header of {paths[0]} ({_show(first)}); "
                    "the parts of benchmark_filename need the same columns, in the same order"
                )

    def _require_token(self, table: AtomicTable, field: str, role: str) -> None:
        if field not in table.columns:
            raise DataError(
                f"{table.path}: no column {field!r} ({role}); the loaded columns are "
                f"{', '.join(table.columns) or 'none'} (check {role} and load_col)"
            )
        if table.types[field] != "token":
            raise DataError(f"{table.path}: column {field!r} ({role}) must have type token, not {table.types[field]}")

    def _build(self) -> None:
        """Read, filter, give ids, complete the feature values; a data set with more files (a knowledge graph)
        extends the steps ``_read``, ``_filter`` and ``_remap_all``."""
        tables, groups = self._read()
        check_field_keys(self.config, self.field2type, self.field2source)
        self._filter(tables)
        self._remap_all(tables, groups)
        part = tables["inter"].pop(PART, None)
        if part is not None:
            self.derived[BENCHMARK_PART] = part
        self.inter_feat = tables["inter"]
        self.user_feat = self._index_by_id(tables["user"], self.uid_field, self.user_num, "user")
        self.item_feat = self._index_by_id(tables["item"], self.iid_field, self.item_num, "item")
        for suffix in self.additional_suffixes():
            setattr(self, f"{suffix}_feat", as_table(tables[suffix]))
        self._fill_nan()
        self._apply_threshold()
        self._normalize()
        self._discretize()
        self._preload_weights()
        release_free_memory()  # the text and intermediate columns are gone; keep them out of later peaks

    def _read(self) -> tuple[dict[str, dict[str, Column] | None], dict[str, list[str]]]:
        """The tables of the files read (``.inter``, ``.user``, ``.item``, ...) with each id group in one code
        space, and the groups."""
        inter = self._load("inter", required=True)
        self._require_token(inter, self.uid_field, "USER_ID_FIELD")
        self._require_token(inter, self.iid_field, "ITEM_ID_FIELD")
        others = {suffix: self._load(suffix) for suffix in self.files_read[1:]}
        if others["user"] is not None:
            self._require_token(others["user"], self.uid_field, "USER_ID_FIELD")
        if others["item"] is not None:
            self._require_token(others["item"], self.iid_field, "ITEM_ID_FIELD")
        tables: dict[str, dict[str, Column] | None] = {"inter": dict(inter.columns)}
        tables.update({suffix: dict(t.columns) if t is not None else None for suffix, t in others.items()})
        for suffix in self.additional_suffixes():
            tables[suffix] = self._load_additional(suffix)
        groups = self.id_groups()
        self._share_code_spaces(tables, groups)
        self._n_read = len(inter)
        return tables, groups

    def _load_additional(self, suffix: str) -> dict[str, Column] | None:
        """The columns of ``<dataset>.<suffix>`` named in ``additional_feat_suffix`` (None when ``load_col`` has no
        entry for it, as in RecBole, with a warning)."""
        if suffix in self.files_read or suffix == "link":
            raise ConfigError(
                f"config key 'additional_feat_suffix' names {suffix!r}, a file {type(self).__name__} reads anyway; "
                "list only extra files (e.g. [ent, rel])"
            )
        if not self._file(suffix).is_file():
            raise DataError(
                f"{self._file(suffix)}: file not found (config key 'additional_feat_suffix' names {suffix!r}); add "
                "the file or remove the suffix"
            )
        load_col = self.config["load_col"]
        if load_col is not None and suffix not in load_col:
            logger.warning(
                "additional_feat_suffix names %r, but load_col has no %r entry: %s is not read",
                suffix,
                suffix,
                self._file(suffix),
            )
            return None
        return dict(self._load(suffix).columns)

    def _filter(self, tables: dict[str, dict[str, Column] | None]) -> None:
        """RecBole's row filters, in place; no rows left in a file is an error."""
        keeps = filters.filter_tables(self, tables)
        for name, keep in keeps.items():
            if not keep.all():  # a filter that removed nothing leaves the table as it is (no copy)
                tables[name] = take(tables[name], keep)
        self._require_rows(tables)

    def _require_rows(self, tables: Mapping[str, dict[str, Column] | None]) -> None:
        for name, table in tables.items():
            if table is not None and not len(next(iter(table.values()))):
                where = ", ".join(map(str, self.inter_files())) if name == "inter" else self._file(name)
                raise DataError(
                    f"no rows left in {where} after filtering ({self._n_read} interactions read); loosen "
                    "val_interval, user_inter_num_interval / item_inter_num_interval or rm_dup_inter"
                )

    def _remap_all(self, tables: dict[str, dict[str, Column] | None], groups: dict[str, list[str]]) -> None:
        """Ids for every token column."""
        self._remap(tables, groups)

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

    # -- remapping ---------------------------------------------------------------------------------
    def _remap(self, tables: dict[str, dict[str, Column] | None], groups: dict[str, list[str]]) -> None:
        grouped: set[str] = set()
        for fields in groups.values():
            members = _members(tables, fields)
            grouped.update(fields)
            if members:
                self._remap_together(tables, members)
        for name in tables:
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


def _members(tables: Mapping[str, dict[str, Column] | None], fields: list[str]) -> list[tuple[str, str]]:
    """The (file, field) pairs holding ``fields``, fields first, files in RecBole's order (inter, user, item,
    then kg for a knowledge-aware data set)."""
    return [(name, field) for field in fields for name in tables if tables[name] is not None and field in tables[name]]


def _recode(column: Column, mapping: np.ndarray, vocabulary: np.ndarray) -> Column:
    if isinstance(column, SeqColumn):
        return SeqColumn(column.offsets, mapping[column.values], vocabulary)
    codes = np.where(column.codes >= 0, mapping[np.maximum(column.codes, 0)], -1)
    return TokenColumn(codes, vocabulary)


def _show(header: Mapping[str, str]) -> str:
    return " ".join(f"{name}:{ftype}" for name, ftype in header.items())


def concat_tables(tables: list[AtomicTable]) -> AtomicTable:
    """The rows of ``tables`` (the same columns) one after another, each token column over one merged vocabulary;
    the result carries the first table's path and types."""
    columns: dict[str, Column] = {}
    for name in tables[0].columns:
        parts = [table.columns[name] for table in tables]
        if isinstance(parts[0], np.ndarray):
            columns[name] = np.concatenate(parts)
            continue
        vocabulary = parts[0].vocabulary
        if vocabulary is not None:
            vocabulary, mappings = unify([part.vocabulary for part in parts])
            parts = [_recode(part, mapping, vocabulary) for part, mapping in zip(parts, mappings, strict=True)]
        if isinstance(parts[0], TokenColumn):
            columns[name] = TokenColumn(np.concatenate([part.codes for part in parts]), vocabulary)
        else:
            lengths = np.concatenate([part.lengths for part in parts])
            offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
            np.cumsum(lengths, out=offsets[1:])
            columns[name] = SeqColumn(offsets, np.concatenate([part.values for part in parts]), vocabulary)
    return AtomicTable(tables[0].path, dict(tables[0].types), columns)
