"""Processed-data cache: a data set processed once is stored and loaded quickly the next time.

The key is a hash of the content of every atomic file the config reads, the config keys that change
processing (``dataset.PROCESSING_KEYS``), the recforge version and the cache format version; a changed file or
setting gives another key, so a stale entry is never used. A file's content digest is remembered with its size,
modification and change times (ns) and inode in ``digests.json`` beside the entries, so an unchanged 700 MB file
is not read again to compute the key (a file changed in the last 2 s is always read: file times tick too coarsely
to vouch for it). Entries are folders of ``.npy`` files (``recforge.data.cache.entries``: no pickle, written
atomically, memory-mapped when read) under ``$RECFORGE_CACHE_DIR/datasets/<name>/`` (default
``~/.cache/recforge``). An entry records its key, the source files' digests, the recforge version and a manifest
of its arrays, checked cheaply on every open (a file is read only when its stat stamp changed); an entry that
differs (a swapped or stale ``.npy`` file, an entry moved under another key) or cannot be read is reported in one
warning line, removed and rebuilt. The ``KEEP`` most recently used entries per data set are kept, each with its
cached splits (``recforge.data.cache.splits``). ``data_cache: false`` (``--no-cache`` on the command line)
bypasses the cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from recforge.data.cache.entries import (
    RACY_NS,
    EntryMismatch,
    keep_newest,
    pack_table,
    read_entry,
    recforge_version,
    remove_entry,
    touch,
    unpack_table,
    write_entry,
)
from recforge.utils.files import atomic_write

if TYPE_CHECKING:
    from recforge.data.dataset import Dataset

logger = logging.getLogger("recforge")

FORMAT_VERSION = 4  # 2: vocabularies as UTF-8 bytes + offsets; 3: folders of memory-mapped .npy files; 4: manifests
KEEP = 8
_CHUNK = 1 << 20
DIGESTS = "digests.json"


def cache_root() -> Path:
    return Path(os.environ.get("RECFORGE_CACHE_DIR", "~/.cache/recforge")).expanduser() / "datasets"


def file_digest(path: Path) -> str:
    """blake2b-128 of a file's bytes."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def remembered_digests(paths: list[Path], folder: Path) -> dict[str, str]:
    """``{file name: digest}`` of ``paths``, reusing the digests in ``folder/digests.json`` of files whose size,
    modification and change times (ns) and inode are unchanged, and recording the new ones."""
    memo_path = folder / DIGESTS
    try:
        memo = json.loads(memo_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        memo = {}
    digests, changed = {}, False
    for path in paths:
        stat = path.stat()
        key = str(path.resolve())
        stamp = [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]  # ctime: a restored mtime is seen
        known = memo.get(key)
        if not isinstance(known, dict) or known.get("stamp") != stamp:
            known = {"stamp": stamp, "digest": file_digest(path)}
            # File times tick every few milliseconds: a file changed in the last seconds could change again
            # within its tick, unseen by the stamp; its digest is remembered only once it is older ("racy git").
            if time.time_ns() - stat.st_mtime_ns > RACY_NS:
                memo[key] = known
                changed = True
        digests[path.name] = known["digest"]
    if changed:
        try:
            with atomic_write(memo_path, "w") as handle:
                json.dump(memo, handle)
        except OSError:
            pass  # a read-only cache folder: digests are computed again next time
    return digests


def processed_dataset(dataset_class: type[Dataset], config: Mapping[str, Any]) -> Dataset:
    """``dataset_class(config)``, read from the entry of its key when there is one (or a usable one), processed and
    stored in it otherwise; ``data_cache: false`` processes the files and stores nothing. The data set's
    ``cache_entry`` is the entry's path (its splits are cached beside it), or None without the cache."""
    if not config["data_cache"]:
        return dataset_class(config)  # processes and finishes
    from recforge.data.dataset import PROCESSING_KEYS
    from recforge.data.processing.field_keys import check_field_keys
    from recforge.utils.memory import release_free_memory

    dataset = dataset_class.unprocessed(config)
    cache = DatasetCache.for_dataset(dataset)
    if cache.restore(dataset):
        # processing checks them; the processing keys were checked when the entry was built
        check_field_keys(config, dataset.field2type, dataset.field2source, skip=PROCESSING_KEYS)
    else:
        dataset.process()
        cache.save(dataset)
        release_free_memory()
    dataset.cache_entry = cache.path
    dataset.finish()
    return dataset


class DatasetCache:
    """One cache entry (a path), with the operations to fill a ``Dataset`` from it or store one in it.
    ``sources``: ``{file name: digest}`` of the atomic files it is built from (checked against the entry's record
    when given)."""

    def __init__(self, path: Path, sources: dict[str, str] | None = None) -> None:
        self.path = path
        self.built_from: dict[str, object] = {"key": path.name}
        if sources is not None:
            self.built_from["sources"] = sources

    @property
    def key(self) -> str:
        return self.path.name

    @classmethod
    def for_dataset(cls, dataset: Dataset) -> DatasetCache:
        from recforge.data.dataset import PROCESSING_KEYS

        folder = cache_root() / dataset.dataset_name
        files = remembered_digests([p for p in dataset.source_files() if p.exists()], folder)
        settings = {k: dataset.config.get(k) for k in PROCESSING_KEYS}
        settings["class"] = type(dataset).__name__  # what a class derives (a sequential order) is cached too
        blob = json.dumps(
            {"format": FORMAT_VERSION, "recforge": recforge_version(), "files": files, "settings": settings},
            sort_keys=True,
            default=str,
        )
        return cls(folder / hashlib.blake2b(blob.encode(), digest_size=16).hexdigest(), files)

    # -- read --------------------------------------------------------------------------------------
    def restore(self, dataset: Dataset, announce: bool = True) -> bool:
        """Fill ``dataset`` from the entry; False when there is none, or it differs from what it must be or cannot be
        read (it is then removed, with one warning line). ``announce``: log the hit and the processing log replayed
        from the entry."""
        if not self.path.is_dir():
            return False
        try:
            arrays, meta = read_entry(self.path, self.built_from)
            self._fill(dataset, arrays, meta)
        except EntryMismatch as exc:
            logger.warning("processed-data cache %s does not match its manifest (%s); rebuilding it", self.path, exc)
            remove_entry(self.path)
            return False
        except Exception as exc:  # any damage (truncated file, missing key, bad JSON) means: rebuild
            logger.warning(
                "processed-data cache %s is unreadable (%s: %s); rebuilding it", self.path, type(exc).__name__, exc
            )
            remove_entry(self.path)
            return False
        touch(self.path)
        if announce:
            logger.info("loaded processed %s from the cache %s", dataset.dataset_name, self.path)
            for line in dataset.processing_log:
                logger.info("%s (when it was processed)", line)
        return True

    @staticmethod
    def _fill(dataset: Dataset, arrays: dict[str, np.ndarray], meta: dict) -> None:
        """Set ``dataset``'s tables, vocabularies and logs from a read entry; KeyError where ``meta`` lacks a part."""
        vocabularies = {
            key: decode_strings(arrays[f"vocab/{key}/offsets"], arrays[f"vocab/{key}/bytes"])
            for key in meta["vocabularies"]
        }
        dataset.field2type = meta["field2type"]
        dataset.field2source = meta["field2source"]
        dataset.field2id_token = {field: vocabularies[key] for field, key in meta["field2vocab"].items()}
        for name, kinds in meta["tables"].items():
            table = None if kinds is None else unpack_table(name, kinds, arrays)
            setattr(dataset, f"{name}_feat", table)
        dataset._preloaded_weight = {field: arrays[f"preload/{field}"] for field in meta["preloaded"]}
        dataset.derived = {name: arrays[f"derived/{name}"] for name in meta.get("derived", [])}
        dataset.field2bucketnum = dict(meta.get("field2bucketnum", {}))
        dataset.processing_log = list(meta["processing_log"])
        if set(meta["tables"]) != set(dataset.stored_tables()):
            raise KeyError(f"tables {sorted(meta['tables'])}, expected {sorted(dataset.stored_tables())}")

    # -- write -------------------------------------------------------------------------------------
    def save(self, dataset: Dataset) -> None:
        """Store ``dataset`` and map its arrays from the stored entry; a failure (read-only disk, full disk) is a
        warning, never an error."""
        try:
            self._write(dataset)
        except OSError as exc:
            logger.warning("could not write the processed-data cache %s: %s", self.path, exc)
            return
        keep_newest(self.path.parent, KEEP)
        # The data set's arrays are swapped for the entry's, mapped from disk: the freshly built copies (800 MB
        # for 25M interactions) leave memory, and pages are read back only where used.
        log = list(dataset.processing_log)
        if self.restore(dataset, announce=False):
            dataset.processing_log = log

    def _write(self, dataset: Dataset) -> None:
        arrays: dict[str, np.ndarray] = {}
        vocab_keys: dict[int, str] = {}
        field2vocab: dict[str, str] = {}
        for field, tokens in dataset.field2id_token.items():
            key = vocab_keys.setdefault(id(tokens), str(len(vocab_keys)))
            field2vocab[field] = key
            if f"vocab/{key}/bytes" not in arrays:
                arrays[f"vocab/{key}/offsets"], arrays[f"vocab/{key}/bytes"] = encode_strings(tokens)
        tables: dict[str, dict[str, str] | None] = {}
        for name in dataset.stored_tables():
            table = getattr(dataset, f"{name}_feat")
            tables[name] = None if table is None else pack_table(name, table, arrays)
        for field, matrix in dataset._preloaded_weight.items():
            arrays[f"preload/{field}"] = matrix
        for name, array in dataset.derived.items():
            arrays[f"derived/{name}"] = array
        meta = {
            "field2type": dataset.field2type,
            "field2source": dataset.field2source,
            "field2vocab": field2vocab,
            "vocabularies": sorted(set(field2vocab.values())),
            "tables": tables,
            "preloaded": sorted(dataset._preloaded_weight),
            "derived": sorted(dataset.derived),
            "field2bucketnum": dataset.field2bucketnum,
            "processing_log": dataset.processing_log,
        }
        write_entry(self.path, arrays, meta, self.built_from)


def encode_strings(tokens) -> tuple[np.ndarray, np.ndarray]:
    """Tokens as (int64 offsets [n + 1], uint8 UTF-8 bytes): storage proportional to the text, where a fixed-width
    NumPy string array pads every token to the longest one (one 2 MB token made a 1 GB entry)."""
    import pyarrow as pa

    array = pa.array(list(tokens), type=pa.large_string())
    _, offsets, data = array.buffers()
    offsets = np.frombuffer(offsets, dtype=np.int64)[array.offset : array.offset + len(array) + 1].copy()
    data = np.frombuffer(data, dtype=np.uint8).copy() if data is not None else np.zeros(0, dtype=np.uint8)
    return offsets, data


def decode_strings(offsets: np.ndarray, data: np.ndarray) -> np.ndarray:
    """The object array of strings ``encode_strings`` stored."""
    import pyarrow as pa

    array = pa.LargeStringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(data))
    return np.asarray(array.to_pylist(), dtype=object)
