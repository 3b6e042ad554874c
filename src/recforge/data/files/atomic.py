"""Reading RecBole atomic files (``.inter``, ``.user``, ``.item``, ``.kg``, ``.link``).

The first line is a header of ``name:type`` entries, one per column, with the types ``token``,
``token_seq``, ``float`` and ``float_seq``. Values are separated by ``field_separator`` (a tab);
values inside a sequence column by ``seq_separator`` (a space). Parsing is columnar (pyarrow): no Python
runs per row except on the error path, which finds the exact line to report.

Tokens are returned dictionary-encoded: ``TokenColumn(codes, vocabulary)`` where ``vocabulary[codes[i]]``
is the token of row ``i``. Sequences are ragged: row ``i`` holds ``values[offsets[i]:offsets[i+1]]``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from recforge.data.columns import Column, SeqColumn, TokenColumn
from recforge.errors import DataError

logger = logging.getLogger("recforge")

FIELD_TYPES = ("token", "token_seq", "float", "float_seq")

# Arrow's default allocator (mimalloc / jemalloc) keeps freed memory: reading ml-100k left 45 MB resident with
# it and 10 MB with the system allocator. Only recforge's own calls use this pool.
POOL = pa.system_memory_pool()
# Below this size a file is parsed on one thread: starting Arrow's thread pool costs more (time and ~10 MB
# resident) than it saves; above it, threads pay (5M rows: 0.55 s with 2 threads, 0.87 s with one).
THREADED_BYTES = 8 << 20


@dataclass
class AtomicTable:
    """The columns of one atomic file, in header order, with their declared types."""

    path: Path
    types: dict[str, str]
    columns: dict[str, Column]

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0


def read_header(path: Path, field_separator: str = "\t") -> dict[str, str]:
    """Parse the header line into ``{name: type}``; a malformed entry is a DataError naming it."""
    try:
        with open(path, "rb") as handle:
            line = handle.readline().decode("utf-8-sig")  # -sig: a byte-order mark is not part of a name
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}, line 1: not UTF-8 text ({exc.reason}); save the file as UTF-8") from None
    except OSError as exc:  # a folder, no permission, a symbolic-link loop, a device error
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    line = line.rstrip("\r\n")
    if not line:
        raise DataError(f"{path}, line 1: the header is empty; expected columns like user_id:token")
    entries = line.split(field_separator)
    if len(entries) == 1 and field_separator not in line:
        for other in (",", ";", "|", " "):
            if other in line and all(":" in part for part in line.split(other)):
                raise DataError(
                    f"{path}, line 1: the header has no {field_separator!r} (field_separator) but is separated by "
                    f"{other!r}; set field_separator: {other!r} or save the file tab-separated"
                )
    types: dict[str, str] = {}
    for position, entry in enumerate(entries, start=1):
        name, colon, ftype = entry.strip().rpartition(":")
        if not colon or not name:
            raise DataError(
                f"{path}, line 1, column {position}: header entry {entry!r} must look like name:type "
                f"with type one of {', '.join(FIELD_TYPES)}"
            )
        if ftype not in FIELD_TYPES:
            raise DataError(
                f"{path}, line 1, column {position}: unknown field type {ftype!r} in {entry!r}; "
                f"use one of {', '.join(FIELD_TYPES)}"
            )
        if name in types:
            raise DataError(f"{path}, line 1: column {name!r} appears twice in the header")
        types[name] = ftype
    return types


def read_atomic(
    path: str | Path,
    columns: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    field_separator: str = "\t",
    seq_separator: str = " ",
) -> AtomicTable:
    """Read an atomic file.

    Args:
        path: the file.
        columns: the columns to load (None: all). A name that is not in the header is a DataError.
        exclude: columns not to load.
        field_separator: separator between columns.
        seq_separator: separator inside token_seq / float_seq values.

    Returns:
        AtomicTable whose float columns are float64 arrays (empty values are NaN), token columns TokenColumns
        (empty values are code -1), and sequence columns SeqColumns (empty items dropped).
    """
    path = Path(path)
    header = read_header(path, field_separator)
    names = list(header)
    if columns is not None:
        missing = [c for c in columns if c not in header]
        if missing:
            raise DataError(
                f"{path}: column(s) {', '.join(map(repr, missing))} requested by load_col are not in the header; "
                f"the file has: {', '.join(names)}"
            )
    unknown = [c for c in exclude if c not in header]
    if unknown:
        raise DataError(
            f"{path}: column(s) {', '.join(map(repr, unknown))} named by unload_col are not in the header; "
            f"the file has: {', '.join(names)}"
        )
    wanted = [n for n in names if (columns is None or n in columns) and n not in exclude]
    if not wanted:
        return AtomicTable(path, {}, {})
    floats = {name: pa.float64() for name in wanted if header[name] == "float"}
    table = _read_columns(path, names, wanted, field_separator, floats) if floats else None
    if table is None:  # no float column, or one that is not plain numbers: everything as text, checked below
        table = _read_columns(path, names, wanted, field_separator)
    result: dict[str, Column] = {}
    for name in wanted:
        array = table.column(name).combine_chunks() if table.num_rows else pa.array([], pa.string())
        table = table.drop_columns([name])  # the text of a converted column is freed as soon as it is converted
        ftype = header[name]
        if ftype == "token":
            result[name] = _encode_tokens(array)
        elif ftype == "float" and pa.types.is_floating(array.type):
            result[name] = array.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)  # null -> NaN
        elif ftype == "float":
            result[name] = _to_float(array, path, names.index(name), name, field_separator)
        elif ftype == "token_seq":
            result[name] = _split_sequences(array, seq_separator, tokens=True, where=(path, name))
        else:
            result[name] = _split_sequences(array, seq_separator, tokens=False, where=(path, name))
    return AtomicTable(path, {n: header[n] for n in wanted}, result)


def _read_columns(
    path: Path, names: list[str], wanted: list[str], sep: str, numbers: dict[str, pa.DataType] | None = None
) -> pa.Table | None:
    """The ``wanted`` columns as text, except ``numbers`` parsed by the reader (an empty field is null).

    With ``numbers``, None when one of their values is not a plain finite number (the caller reads the file as
    text, whose checks name the line); without, a file that cannot be parsed is a DataError naming the line. A row
    with more fields than the header keeps its first ones, with one warning naming the line (RecBole's reader
    ignores the extra fields too; RecBole's own test fixture has such a row); fewer fields is an error.
    """
    if len(sep) != 1:
        raise DataError(f"field_separator must be one character, got {sep!r}")
    numbers = numbers or {}
    longer: list[int] = []  # rows with more fields than the header, skipped by the first read

    def on_invalid_row(row) -> str:
        if row.actual_columns > row.expected_columns:
            longer.append(row.number or 0)
            return "skip"
        return "error"

    try:
        table = _read_csv(path, names, wanted, sep, numbers, on_invalid_row)
        if longer:
            fixed, lines = _without_extra_fields(path, len(names), sep)
            more = f" (and {len(lines) - 1} more such line(s))" if len(lines) > 1 else ""
            logger.warning(
                "%s, line %d: more fields than the header's %d; the extra ones are ignored%s",
                path,
                lines[0],
                len(names),
                more,
            )
            table = _read_csv(pa.BufferReader(fixed), names, wanted, sep, numbers, None)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        if numbers:
            return None
        raise _locate_parse_error(path, len(names), sep, exc) from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    for name in numbers:
        column = table.column(name)
        finite = pc.is_finite(column, memory_pool=POOL)  # null for null: an empty field
        if pc.sum(pc.invert(finite)).as_py():  # a value written as nan / inf
            return None
    return table


def _read_csv(source, names: list[str], wanted: list[str], sep: str, numbers: dict, on_invalid) -> pa.Table:
    big = isinstance(source, Path) and source.stat().st_size > THREADED_BYTES
    return pa_csv.read_csv(
        source,
        read_options=pa_csv.ReadOptions(column_names=names, skip_rows=1, encoding="utf8", use_threads=big),
        parse_options=pa_csv.ParseOptions(
            delimiter=sep, quote_char=False, double_quote=False, invalid_row_handler=on_invalid
        ),
        convert_options=pa_csv.ConvertOptions(
            column_types={n: numbers.get(n, pa.string()) for n in names},
            include_columns=wanted,
            strings_can_be_null=False,
            null_values=[""],
        ),
        memory_pool=POOL,
    )


def _without_extra_fields(path: Path, n_columns: int, sep: str) -> tuple[bytes, list[int]]:
    """The file's bytes with each row cut to its first ``n_columns`` fields, and the numbers of the lines cut."""
    data = path.read_bytes()
    separator = sep.encode()
    lines = data.split(b"\n")
    cut = []
    for number, line in enumerate(lines[1:], start=2):
        if line.count(separator) >= n_columns:
            ending = b"\r" if line.endswith(b"\r") else b""
            lines[number - 1] = separator.join(line.rstrip(b"\r").split(separator)[:n_columns]) + ending
            cut.append(number)
    return b"\n".join(lines), cut


def _locate_parse_error(path: Path, n_columns: int, sep: str, exc: Exception) -> DataError:
    """Scan the file (error path only) for the first line that is not UTF-8 or has the wrong number of columns."""
    with open(path, "rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as error:
                return DataError(
                    f"{path}, line {line_no}: not UTF-8 text (byte {raw[error.start]:#04x} at character "
                    f"{error.start + 1}); save the file as UTF-8"
                )
            if line_no == 1:
                continue
            line = raw.decode("utf-8").rstrip("\r\n")
            if not line:
                continue
            found = line.count(sep) + 1
            if found != n_columns:
                return DataError(
                    f"{path}, line {line_no}: expected {n_columns} columns separated by {sep!r}, found {found}: "
                    f"{line[:120]!r}"
                )
    return DataError(f"{path}: cannot be parsed ({exc})")


def _encode_tokens(array: pa.Array) -> TokenColumn:
    encoded = pc.dictionary_encode(array, memory_pool=POOL)
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    vocabulary = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
    empty = np.flatnonzero(vocabulary == "")
    if len(empty):
        codes = np.where(codes == empty[0], -1, codes)
    return TokenColumn(codes, vocabulary)


def _to_float(array: pa.Array, path: Path, column: int, name: str, sep: str) -> np.ndarray:
    stripped = pc.utf8_trim_whitespace(array, memory_pool=POOL)
    blank = pc.equal(stripped, "", memory_pool=POOL)
    try:
        values = pc.cast(
            pc.if_else(blank, pa.scalar(None, pa.string()), stripped, memory_pool=POOL), pa.float64(), memory_pool=POOL
        )
    except pa.ArrowInvalid:
        texts = stripped.to_pylist()
        for row, text in enumerate(texts):
            if text == "":
                continue
            try:
                float(text)
            except ValueError:
                raise DataError(
                    f"{path}, line {row + 2}, column {column + 1} ({name}:float): {text!r} is not a number"
                ) from None
        raise
    result = values.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    _refuse_non_finite(result, stripped, path, lambda row: f"line {row + 2}, column {column + 1} ({name}:float)")
    return result


def _refuse_non_finite(values: np.ndarray, texts: pa.Array, path: Path, where) -> None:
    """A value written as nan / inf is an error (an empty field is a missing value, filled later)."""
    bad = ~np.isfinite(values) & ~pc.equal(texts, "").to_numpy(zero_copy_only=False)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path}, {where(row)}: {texts[row].as_py()!r} is not a finite number ({int(bad.sum())} such value(s) in "
            "the column); write a number, or leave the field empty for a missing value"
        )


def _split_sequences(array: pa.Array, sep: str, tokens: bool, where: tuple[Path, str]) -> SeqColumn:
    lists = pc.split_pattern(array, pattern=sep, memory_pool=POOL)
    flat = pc.list_flatten(lists)
    row_of = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)
    keep = pc.not_equal(flat, "").to_numpy(zero_copy_only=False)
    flat = flat.filter(pa.array(keep))
    row_of = row_of[keep]
    offsets = np.zeros(len(array) + 1, dtype=np.int64)
    np.cumsum(np.bincount(row_of, minlength=len(array)), out=offsets[1:])
    if tokens:
        column = _encode_tokens(flat)
        return SeqColumn(offsets, column.codes, column.vocabulary)
    try:
        values = pc.cast(flat, pa.float64(), memory_pool=POOL).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:
        path, name = where
        for position, text in enumerate(flat.to_pylist()):
            try:
                float(text)
            except ValueError:
                row = int(row_of[position])
                raise DataError(f"{path}, line {row + 2} ({name}:float_seq): {text!r} is not a number") from None
        raise
    values = values.astype(np.float64, copy=False)
    path, name = where
    _refuse_non_finite(values, flat, path, lambda k: f"line {int(row_of[k]) + 2} ({name}:float_seq)")
    return SeqColumn(offsets, values, None)
