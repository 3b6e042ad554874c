"""Logging: the console and the run folder's ``run.log``.

``init_logger(config)`` is RecBole's call: it configures the root logger, so ``logging.getLogger().info(...)`` in
a user's script is shown and recorded like recforge's own messages. Records are shown on stderr (messages of
recforge and of the script itself; other libraries only from WARNING up) and kept in memory until the run folder
exists; ``attach_run_log`` (called when the trainer creates or reopens its run folder) writes them to ``run.log``
and sends every later record there too. A new trainer detaches the previous run's file; records logged between
two runs go to the later one when each run starts with ``init_logger`` (as RecBole scripts and ``recforge.run``
do), else to the earlier one.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

LOGGER_NAME = "recforge"
_FORMAT = "%(asctime)s %(levelname)s %(message)s"
_BUFFER_LIMIT = 100_000  # records kept before a run folder exists; older ones are dropped first


class _CurrentStderr(logging.StreamHandler):
    """A handler that writes to whatever ``sys.stderr`` is when a record is emitted (test runners and notebooks
    replace it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


class _OwnRecords(logging.Filter):
    """recforge's records, the script's own (root logger) and any other library's from WARNING up."""

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        return name in ("root", LOGGER_NAME) or name.startswith(LOGGER_NAME + ".") or record.levelno >= logging.WARNING


class RunLogHandler(logging.Handler):
    """Keeps formatted records in memory until ``attach(path)``; from then on appends them to that file."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter(_FORMAT, "%Y-%m-%d %H:%M:%S"))
        self.addFilter(_OwnRecords())
        self.buffer: list[str] = []
        self.path: Path | None = None
        self._file = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)
            return
        if self._file is None:
            self.buffer.append(line)
            if len(self.buffer) > _BUFFER_LIMIT:
                del self.buffer[: len(self.buffer) - _BUFFER_LIMIT]
        else:
            self._file.write(line)
            self._file.flush()

    def attach(self, path: str | Path) -> None:
        """Write the buffered records to ``path`` (appending) and send every later record there."""
        path = Path(path)
        if self.path == path and self._file is not None:
            return
        self._close_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open while the run logs
        self.path = path
        self._file.writelines(self.buffer)
        self._file.flush()
        self.buffer.clear()

    def detach(self) -> None:
        """Stop writing to the current file; keep records in memory until the next ``attach``."""
        self._close_file()
        self.path = None

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def close(self) -> None:
        self._close_file()
        super().close()


def _level(config_or_level: Mapping[str, Any] | str | None) -> str:
    if config_or_level is None:
        return "INFO"
    if isinstance(config_or_level, str):
        return config_or_level
    return config_or_level["state"]


def init_logger(
    config: Mapping[str, Any] | str | None = None, log_file: str | Path | None = None, console: bool = True
) -> logging.Logger:
    """Configure logging afresh for a run (RecBole's ``init_logger(config)``).

    Args:
        config: a config (its ``state`` is the level) or a level name ("INFO", "WARNING").
        log_file: write the log there at once (otherwise it is kept until the run folder is created).
        console: show records on stderr.

    Returns the ``recforge`` logger. Handlers this function added before are replaced; other handlers stay.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_recforge", False):
            root.removeHandler(handler)
            handler.close()
    level = _level(config)
    root.setLevel(level)
    own = logging.getLogger(LOGGER_NAME)
    own.setLevel(logging.NOTSET)
    own.propagate = True
    if console:
        stream = _CurrentStderr()
        stream.setFormatter(logging.Formatter("%(message)s"))
        stream.addFilter(_OwnRecords())
        stream._recforge = True
        root.addHandler(stream)
    run_log = RunLogHandler()
    run_log._recforge = True
    root.addHandler(run_log)
    if log_file is not None:
        run_log.attach(log_file)
    return own


def run_log_handler() -> RunLogHandler | None:
    """The run-log handler ``init_logger`` installed, if any."""
    return next((h for h in logging.getLogger().handlers if isinstance(h, RunLogHandler)), None)


def attach_run_log(path: str | Path) -> None:
    """Send the run log to ``path``; without ``init_logger`` first, recforge's own records from INFO up."""
    handler = run_log_handler()
    if handler is None:  # nobody called init_logger: keep recforge's INFO records, show warnings only
        init_logger("WARNING")
        logging.getLogger(LOGGER_NAME).setLevel(logging.INFO)
        for console in logging.getLogger().handlers:
            if isinstance(console, _CurrentStderr):
                console.setLevel(logging.WARNING)
        handler = run_log_handler()
    handler.attach(path)


def detach_run_log() -> None:
    """A new run begins: stop sending records to the previous run's ``run.log`` (they wait for the new one)."""
    handler = run_log_handler()
    if handler is not None:
        handler.detach()
