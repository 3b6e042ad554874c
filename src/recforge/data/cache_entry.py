"""Cache entries on disk: a folder of ``.npy`` files and a ``meta.json``, written atomically, read memory-mapped.

An entry ``<key>/`` holds one ``<name>.npy`` per array (``/`` in a name makes sub-folders) and ``meta.json``
(JSON, written last). It is written into a temporary folder beside it and renamed into place, so a reader sees
a complete entry or none. Reading maps every array copy-on-write (``mmap_mode="c"``): nothing is read before it
is used, and an array changed in memory never changes the file. An entry's files are never changed in place (a
damaged entry is removed and written anew; removing a mapped file keeps it readable on POSIX systems), so mapped
arrays stay valid while the entry is replaced. No pickle anywhere.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from recforge.data.atomic import SeqColumn

META = "meta.json"


def write_entry(path: Path, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
    """Store ``arrays`` and ``meta`` as the entry ``path`` (replacing nothing: an entry another process wrote
    first is kept and this one dropped, both being the same data)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        for name, array in arrays.items():
            target = staging / f"{name}.npy"
            target.parent.mkdir(parents=True, exist_ok=True)
            np.save(target, np.ascontiguousarray(array), allow_pickle=False)
        (staging / META).write_text(json.dumps({**meta, "arrays": sorted(arrays)}), encoding="utf-8")
        try:
            os.rename(staging, path)
        except OSError:
            if not (path / META).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def read_entry(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``(arrays, meta)`` of the entry ``path``, the arrays memory-mapped; any damage raises (OSError,
    ValueError, KeyError, JSONDecodeError)."""
    meta = json.loads((path / META).read_text(encoding="utf-8"))
    arrays = {}
    for name in meta.pop("arrays"):
        file = path / f"{name}.npy"
        try:
            arrays[name] = np.load(file, mmap_mode="c", allow_pickle=False)
        except ValueError:  # an empty array cannot be mapped (a damaged file fails again here)
            arrays[name] = np.load(file, allow_pickle=False)
    return arrays, meta


def remove_entry(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def keep_newest(folder: Path, keep: int) -> None:
    """Remove all but the ``keep`` most recently used entries of ``folder``."""
    entries = [p for p in folder.iterdir() if (p / META).is_file()] if folder.is_dir() else []
    entries.sort(key=lambda p: (p / META).stat().st_mtime, reverse=True)
    for old in entries[keep:]:
        remove_entry(old)


def touch(path: Path) -> None:
    """Mark the entry as just used (``keep_newest`` keeps the most recently used)."""
    os.utime(path / META)


def pack_table(prefix: str, table: Mapping[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, str]:
    """Put the columns of ``table`` into ``arrays`` under ``prefix/field``; returns ``{field: "seq" | "array"}``."""
    kinds = {}
    for field, column in table.items():
        if isinstance(column, SeqColumn):
            arrays[f"{prefix}/{field}/offsets"] = column.offsets
            arrays[f"{prefix}/{field}/values"] = column.values
            kinds[field] = "seq"
        else:
            arrays[f"{prefix}/{field}"] = column
            kinds[field] = "array"
    return kinds


def unpack_table(prefix: str, kinds: Mapping[str, str], arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The table ``pack_table`` stored."""
    return {
        field: SeqColumn(arrays[f"{prefix}/{field}/offsets"], arrays[f"{prefix}/{field}/values"])
        if kind == "seq"
        else arrays[f"{prefix}/{field}"]
        for field, kind in kinds.items()
    }
