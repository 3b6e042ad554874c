"""Run folders: everything one training run writes, in one place.

::

    <checkpoint_dir>/<Model>-<dataset>-<YYYYmmdd-HHMMSS>[-n]/
        config.yaml          the resolved config
        run.log              the whole log of the run (also what was logged before the folder existed)
        history.jsonl        one JSON line per epoch
        metrics.json         best validation result, test result, epochs, loss history
        report.html          the run's HTML report (written by ``recforge.run``, not the trainer; ``recforge.report``)
        checkpoints/last.pth, checkpoints/best.pth
        tensorboard/         with tensorboard: true

The trainer creates the folder when it first writes (``fit`` with ``saved=True``), so a pipeline wired by hand
gets the same folder as ``recforge.run``. Resuming from ``<run>/checkpoints/last.pth`` continues in ``<run>``;
resuming from any other checkpoint (``best.pth``, a copy) starts a new folder that begins with the source run's
history up to that epoch, so the source run is never changed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from recforge.errors import ConfigError, RunFolderInUse
from recforge.utils.files import atomic_write
from recforge.utils.log import attach_run_log

logger = logging.getLogger("recforge")


def check_checkpoint_dir(checkpoint_dir: str | Path) -> Path:
    """The folder runs are saved under; a ConfigError when it is a file or is under a file."""
    root = Path(checkpoint_dir).expanduser()
    for folder in (root, *root.parents):
        if folder.exists():
            if not folder.is_dir():
                raise ConfigError(
                    f"config key 'checkpoint_dir': {folder} is a file, not a folder; give a folder for the run folders"
                )
            break
    return root


class RunFolder:
    """One run's folder (see the module docstring for its layout)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock: int | None = None  # an open descriptor of the folder holding its lock

    # -- the lock ----------------------------------------------------------------------------------
    def lock(self) -> None:
        """Hold the folder's lock (an exclusive ``flock`` on the folder itself) while this process trains in it,
        so that two processes never write it at once (two ``--resume`` of one run). The kernel drops the lock of
        a process that ends, however it ends: a killed run leaves nothing stale to clean up. A RunFolderInUse
        names the folder when another process holds it. Without ``fcntl`` (Windows) nothing is locked."""
        if self._lock is not None:
            return
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            return
        descriptor = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise RunFolderInUse(
                f"run folder {self.path} is in use: another recforge process is training in it; wait until it "
                "ends (or stop it), or resume from a copy of the checkpoint (a new run folder)"
            ) from None
        self._lock = descriptor

    def unlock(self) -> None:
        """Let the folder's lock go (nothing when not held)."""
        if self._lock is not None:
            os.close(self._lock)  # closing the descriptor releases the flock
            self._lock = None

    @classmethod
    def create(cls, config: Mapping[str, Any]) -> RunFolder:
        """A new, empty folder under ``checkpoint_dir`` named after the model, data set and time."""
        root = check_checkpoint_dir(config["checkpoint_dir"])
        stem = f"{config['model']}-{config['dataset']}-{time.strftime('%Y%m%d-%H%M%S')}"
        for n in range(1000):
            path = root / (stem if n == 0 else f"{stem}-{n}")
            try:
                path.mkdir(parents=True)
                return cls(path)
            except FileExistsError:
                continue
            except OSError as exc:
                raise ConfigError(
                    f"config key 'checkpoint_dir': cannot create a run folder in {root} ({exc.strerror or exc}); "
                    "choose a folder you can write to"
                ) from None
        raise ConfigError(f"config key 'checkpoint_dir': cannot create a new run folder under {root}")

    @classmethod
    def of_checkpoint(cls, checkpoint: str | Path) -> RunFolder | None:
        """The run folder a checkpoint ``<run>/checkpoints/<kind>.pth`` belongs to, or None for one stored
        elsewhere."""
        path = Path(checkpoint).resolve()
        if path.parent.name == "checkpoints" and (path.parent.parent / "config.yaml").is_file():
            return cls(path.parent.parent)
        return None

    # -- places ------------------------------------------------------------------------------------
    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def checkpoint(self, kind: str) -> Path:
        """``checkpoints/<kind>.pth`` ("last" or "best")."""
        return self.checkpoints / f"{kind}.pth"

    @property
    def history_file(self) -> Path:
        return self.path / "history.jsonl"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.json"

    @property
    def log_file(self) -> Path:
        return self.path / "run.log"

    # -- writing -----------------------------------------------------------------------------------
    def open_log(self) -> None:
        """Send the run log (and what was logged before the folder existed) to ``run.log``."""
        attach_run_log(self.log_file)

    def write_config(self, config: Mapping[str, Any]) -> None:
        """``config.yaml``: the resolved config (``Config.save``, or the plain values of a mapping)."""
        if hasattr(config, "save"):
            config.save(self.path / "config.yaml")
            return
        import yaml

        with atomic_write(self.path / "config.yaml", "w") as handle:
            handle.write(yaml.safe_dump(dict(config), sort_keys=False, allow_unicode=True))

    def update_metrics(self, **entries: Any) -> None:
        """Merge ``entries`` into ``metrics.json`` (written atomically)."""
        current: dict[str, Any] = {}
        if self.metrics_file.is_file():
            try:
                current = json.loads(self.metrics_file.read_text(encoding="utf-8"))
            except ValueError:
                current = {}
        current.update(entries)
        with atomic_write(self.metrics_file, "w") as handle:
            json.dump(current, handle, indent=2)
            handle.write("\n")

    def append_history(self, record: Mapping[str, Any]) -> None:
        """Add one epoch's line to ``history.jsonl``."""
        with open(self.history_file, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, allow_nan=True) + "\n")

    def history(self, up_to_epoch: int | None = None) -> list[str]:
        """The lines of ``history.jsonl`` (of epochs <= ``up_to_epoch``). A line that cannot be read is dropped
        with a warning naming it: the last one torn by a kill during a write, or a damaged one (not UTF-8, not a
        JSON record)."""
        if not self.history_file.is_file():
            return []
        raw = self.history_file.read_bytes().splitlines()
        kept = []
        for number, data in enumerate(raw, start=1):
            problem, record = _history_record(data)
            if problem is not None:
                torn = number == len(raw) and not data.endswith(b"}")
                why = "torn by a kill during a write" if torn else f"damaged ({problem})"
                logger.warning("%s, line %d: %s; dropped", self.history_file, number, why)
                continue
            if up_to_epoch is None or record.get("epoch", -1) <= up_to_epoch:
                kept.append(data.decode("utf-8"))
        return kept

    def write_history(self, lines: list[str]) -> None:
        """Replace ``history.jsonl`` by ``lines``."""
        with atomic_write(self.history_file, "w") as handle:
            handle.write("".join(line + "\n" for line in lines))

    def branch(self, source: RunFolder | None, epoch: int) -> None:
        """Start this (new) folder as a continuation of ``source`` after ``epoch``: its history up to that epoch
        and its best checkpoint, when they exist."""
        if source is None:
            return
        self.write_history(source.history(epoch))
        best = source.checkpoint("best")
        if best.is_file():
            self.checkpoints.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(best, self.checkpoint("best"))

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def __str__(self) -> str:
        return str(self.path)


def _history_record(data: bytes) -> tuple[str | None, dict[str, Any]]:
    """``(None, record)`` of one history line, or ``(what is wrong, {})``."""
    try:
        record = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text: byte {data[exc.start]:#04x} at byte {exc.start + 1}", {}
    except ValueError:
        return "not a JSON record", {}
    return (None, record) if isinstance(record, dict) else ("not a JSON record", {})
