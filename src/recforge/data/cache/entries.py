"""Cache entries on disk: a folder of ``.npy`` files and a ``meta.json``, written atomically, verified and read
memory-mapped.

An entry ``<key>/`` holds one ``<name>.npy`` per array (``/`` in a name makes sub-folders), ``meta.json`` (JSON,
written last) and ``stamps.json``. It is written into a temporary folder beside it and renamed into place, so a
reader sees a complete entry or none. Reading maps every array copy-on-write: nothing is read before it is used,
and an array changed in memory never changes the file. An entry's arrays are never changed in place (a damaged
entry is removed and written anew; removing a mapped file keeps it readable on POSIX systems), so mapped arrays
stay valid while the entry is replaced. No pickle anywhere.

An entry carries what it was built from and a manifest, and is verified when opened:

* ``meta.json`` holds ``built_from`` (the recforge version and what the caller names: key, source digests, ...),
  the ``manifest`` (per array: dtype, shape, byte size, blake2b-128 of the file) and a ``seal`` (blake2b of the
  rest of ``meta.json``). A different ``built_from``, a broken seal, a missing ``.npy`` file or one not in the
  manifest (in the folders of its arrays: sub-entries such as ``prepared/`` are not part of it), a file whose
  digest or whose header (dtype, shape) differs from the manifest raise ``EntryMismatch``.
* ``stamps.json`` holds each file's stat stamp (size, mtime_ns, ctime_ns, inode), taken when it was written. A
  file whose stamp is unchanged is trusted without being read: opening costs one ``fstat`` and one header read
  per array, however large. Any write, truncation or replacement of a file gives it a new ctime (which no program
  can set back) or inode, so its digest is computed again. The entry is renamed into place only once the file
  system's clock has passed the stamps, so even a change within the same clock tick is seen.
* A file whose stamp differs but whose digest matches (a copied or restored cache folder) is valid; its new
  stamp is recorded by replacing ``stamps.json`` atomically, once its ctime is older than ``RACY_NS`` (a younger
  file could still change within its tick unseen; it is digested again on each open until then: about 1 s per GB).
  A read-only cache folder digests such files on every open. ``meta.json`` is never rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import shutil
import tempfile
import time
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from recforge.data.columns import SeqColumn
from recforge.utils.files import atomic_write

META = "meta.json"
STAMPS = "stamps.json"
RACY_NS = 2_000_000_000  # a stamp younger than this is not recorded (file times tick too coarsely to vouch for it)
_CHUNK = 1 << 20
_SHOWN = 3  # differences named in a message
_RESERVED = ("built_from", "manifest", "seal")


class EntryMismatch(Exception):
    """The entry differs from its manifest or from what it must be built from; the message says what (one line)."""


@lru_cache(maxsize=1)
def recforge_version() -> str:
    """The installed recforge version (package metadata: the data layer does not import ``recforge`` itself)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("recforge")
    except PackageNotFoundError:
        return "unknown"


def array_digest(handle: BinaryIO) -> str:
    """blake2b-128 of the bytes of the open file ``handle`` from its current position to its end."""
    digest = hashlib.blake2b(digest_size=16)
    for chunk in iter(lambda: handle.read(_CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest()


def seal(meta: Mapping[str, Any]) -> str:
    """blake2b-128 of ``meta`` without its ``seal`` key, as JSON with sorted keys (what ``meta.json`` stores)."""
    body = {key: value for key, value in meta.items() if key != "seal"}
    return hashlib.blake2b(json.dumps(body, sort_keys=True).encode(), digest_size=16).hexdigest()


def _stamp(status: os.stat_result) -> list[int]:
    return [status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino]


def write_entry(
    path: Path, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any], built_from: Mapping[str, Any]
) -> None:
    """Store ``arrays`` and ``meta`` as the entry ``path``, built from ``built_from`` (JSON values; the recforge
    version is added), replacing nothing: an entry another process wrote first is kept and this one dropped, both
    being the same data. ``meta`` must not use the keys ``built_from``, ``manifest``, ``seal``."""
    if clash := sorted(set(meta) & set(_RESERVED)):
        raise ValueError(f"meta keys {clash} are reserved")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        manifest, stamps = {}, {}
        for name, array in arrays.items():
            target = staging / f"{name}.npy"
            target.parent.mkdir(parents=True, exist_ok=True)
            np.save(target, np.ascontiguousarray(array), allow_pickle=False)
            with open(target, "rb") as handle:
                shape, dtype = _header(handle, name)[:2]
                handle.seek(0)
                status = os.fstat(handle.fileno())
                manifest[name] = {"dtype": dtype.str, "shape": list(shape), "bytes": status.st_size}
                manifest[name]["blake2b"] = array_digest(handle)
            stamps[name] = _stamp(status)
        body = json.loads(json.dumps({**meta, "built_from": {**built_from, "recforge": recforge_version()}}))
        body["manifest"] = manifest
        body["seal"] = seal(body)
        (staging / STAMPS).write_text(json.dumps(stamps), encoding="utf-8")
        (staging / META).write_text(json.dumps(body), encoding="utf-8")
        _pass_the_tick(staging / META, max((stamp[2] for stamp in stamps.values()), default=0))
        try:
            os.rename(staging, path)
        except OSError:
            if not (path / META).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _pass_the_tick(probe: Path, newest_ns: int) -> None:
    """Wait until the file system's clock has passed ``newest_ns`` (a change of a file after this gives it a ctime
    its stamp does not have); a millisecond or two on coarse clocks, nothing on fine ones, at most a second on a
    file system whose times do not move."""
    deadline = time.monotonic() + 1.0
    while os.stat(probe).st_ctime_ns <= newest_ns and time.monotonic() < deadline:
        time.sleep(0.001)
        os.utime(probe)


def read_entry(path: Path, built_from: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``(arrays, meta)`` of the entry ``path``, the arrays memory-mapped, after checking that it was built from
    ``built_from`` by this recforge version and that its files match the manifest (only files whose stat stamp
    changed are read). A difference raises ``EntryMismatch``; other damage raises OSError, ValueError, KeyError."""
    meta = json.loads((path / META).read_text(encoding="utf-8"))
    if problems := _meta_problems(meta, built_from):
        raise EntryMismatch(_summary(problems))
    manifest = meta["manifest"]
    for key in _RESERVED:
        del meta[key]
    try:
        stamps = json.loads((path / STAMPS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stamps = {}
    stamps = stamps if isinstance(stamps, dict) else {}  # lost or damaged stamps: every file is digested
    problems, absent = _file_problems(path, manifest)
    arrays, fresh = {}, {}
    for name, spec in sorted(manifest.items()):
        if name in absent:
            continue
        try:
            arrays[name], stamp = _open_array(path, name, spec, stamps.get(name))
        except EntryMismatch as exc:
            problems.append(str(exc))
            continue
        if stamp is not None:
            fresh[name] = stamp
    if problems:
        raise EntryMismatch(_summary(problems))
    if fresh:
        try:
            with atomic_write(path / STAMPS, "w") as handle:
                json.dump({**stamps, **fresh}, handle)
        except OSError:
            pass  # a read-only cache: the files are digested again next time
    return arrays, meta


def _meta_problems(meta: dict[str, Any], built_from: Mapping[str, Any]) -> list[str]:
    """What in ``meta.json`` differs from what the entry must be: version, ``built_from``, seal."""
    if not isinstance(meta.get("manifest"), dict) or not isinstance(meta.get("built_from"), dict):
        return ["no manifest (written by an older recforge)"]
    stored, problems = meta["built_from"], []
    if stored.get("recforge") != recforge_version():
        problems.append(f"built by recforge {stored.get('recforge')}, this is {recforge_version()}")
    for key, value in json.loads(json.dumps(built_from)).items():
        if stored.get(key) == value:
            continue
        if isinstance(value, dict) and isinstance(stored.get(key), dict):
            names = sorted(k for k in {*value, *stored[key]} if value.get(k) != stored[key].get(k))
            problems.append(f"{key} differ: {', '.join(names)}")
        else:
            problems.append(f"{key} {stored.get(key)}, expected {value}")
    if meta.get("seal") != seal(meta):
        problems.append("meta.json differs from its seal")
    return problems


def _file_problems(path: Path, manifest: Mapping[str, Any]) -> tuple[list[str], set[str]]:
    """Missing and extra ``.npy`` files in the folders the manifest's arrays live in; ``(problems, missing)``."""
    found = set()
    for folder in {posixpath.dirname(name) for name in manifest}:
        try:
            with os.scandir(path / folder) as listing:
                names = [item.name[:-4] for item in listing if item.name.endswith(".npy") and item.is_file()]
        except FileNotFoundError:
            continue
        found |= {posixpath.join(folder, name) for name in names}
    missing, extra = set(manifest) - found, found - set(manifest)
    problems = [f"{name}.npy is missing" for name in sorted(missing)]
    return problems + [f"{name}.npy is not in the manifest" for name in sorted(extra)], missing


def _open_array(
    path: Path, name: str, spec: Mapping[str, Any], stamp: list[int] | None
) -> tuple[np.ndarray, list[int] | None]:
    """The array ``name`` mapped from the very file checked (digested only when its stamp differs from ``stamp``);
    ``(array, stamp to record or None)``."""
    with open(path / f"{name}.npy", "rb") as handle:
        status = os.fstat(handle.fileno())
        fresh = None
        if _stamp(status) != stamp:
            if status.st_size != spec["bytes"]:
                raise EntryMismatch(f"{name}.npy has {status.st_size} bytes, not {spec['bytes']}")
            if array_digest(handle) != spec["blake2b"]:
                raise EntryMismatch(f"{name}.npy has other content")
            if time.time_ns() - status.st_ctime_ns > RACY_NS:
                fresh = _stamp(status)
            handle.seek(0)
        shape, dtype, fortran = _header(handle, name)
        if dtype.str != spec["dtype"] or list(shape) != spec["shape"]:
            raise EntryMismatch(f"{name}.npy holds {dtype.str} {shape}, not {spec['dtype']} {tuple(spec['shape'])}")
        if dtype.hasobject:
            raise ValueError(f"{name}.npy holds Python objects")
        if dtype.itemsize == 0 or 0 in shape:  # an empty array cannot be mapped
            return np.zeros(shape, dtype=dtype), fresh
        order = "F" if fortran else "C"
        return np.memmap(handle, dtype=dtype, mode="c", offset=handle.tell(), shape=shape, order=order), fresh


def _header(handle: BinaryIO, name: str) -> tuple[tuple[int, ...], np.dtype, bool]:
    """``(shape, dtype, fortran order)`` from the ``.npy`` header at the start of ``handle``, left after it."""
    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
    else:
        raise ValueError(f"{name}.npy: .npy format {version} is not read here")
    return shape, dtype, fortran


def _summary(problems: list[str]) -> str:
    more = len(problems) - _SHOWN
    return "; ".join(problems[:_SHOWN]) + (f"; and {more} more" if more > 0 else "")


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
