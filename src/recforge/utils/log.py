"""The ``recforge`` logger: console output and the run folder's ``run.log``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

LOGGER_NAME = "recforge"
_FORMAT = "%(asctime)s %(levelname)s %(message)s"


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


def init_logger(level: str = "INFO", log_file: str | Path | None = None, console: bool = True) -> logging.Logger:
    """Configure the ``recforge`` logger afresh: level, a stderr handler, and a file handler when given."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        if getattr(handler, "_recforge", False):
            logger.removeHandler(handler)
            handler.close()
    logger.setLevel(level)
    logger.propagate = not console
    if console:
        stream = _CurrentStderr()
        stream.setFormatter(logging.Formatter("%(message)s"))
        stream._recforge = True
        logger.addHandler(stream)
    if log_file is not None:
        file_handler = logging.FileHandler(log_file, encoding="utf-8")
        file_handler.setFormatter(logging.Formatter(_FORMAT, "%Y-%m-%d %H:%M:%S"))
        file_handler._recforge = True
        logger.addHandler(file_handler)
    return logger
