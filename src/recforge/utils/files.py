"""Writing files atomically: readers see the old file or the complete new one, never a half-written one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_write(path: str | Path, mode: str = "wb", durable: bool = False) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success rename it over ``path``, on failure remove it.

    With ``durable`` the data is flushed to disk (fsync) before the rename, so a crash right after the rename
    cannot leave an empty file either.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the permissions open() would
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            yield handle
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask (read by setting it and setting it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove_leftovers(folder: Path) -> list[Path]:
    """Remove every temporary file that killed writes left in ``folder`` (``.<name>.<pid>.*.tmp`` of processes
    that no longer run, and ``.<name>.link`` of checkpoint links); returns them."""
    removed = [stale for stale in folder.glob(".*.link") if _unlinked(stale)]
    for temporary in folder.glob(".*.tmp"):
        name = temporary.name[1:].rsplit(".", 3)[0]  # .<name>.<pid>.<random>.tmp
        removed += remove_stale_temporaries(folder / name)
    return removed


def _unlinked(path: Path) -> bool:
    try:
        path.unlink()
    except OSError:
        return False
    return True


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove the temporary files that earlier writes of ``path`` left beside it when their process was killed
    (``.<name>.<pid>.*.tmp`` whose process no longer runs); returns them."""
    removed = []
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        pid = stale.name[len(path.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and _running(int(pid)):
            continue  # another live process is writing it (a shared cache folder)
        try:
            stale.unlink()
            removed.append(stale)
        except OSError:
            pass
    return removed


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own earlier write, which failed: a leftover
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_utf8(path: str | Path, error: type[Exception], what: str = "") -> str:
    """The text of ``path`` as UTF-8 (a leading byte-order mark dropped); a byte that is not UTF-8 raises ``error``
    naming the file, the line and the byte. ``what`` ("config file ") prefixes the path in the message."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise error(
            f"{what}{path}, line {line}: not UTF-8 text (byte {data[exc.start]:#04x} at byte {column} of the line); "
            "save the file as UTF-8"
        ) from None
