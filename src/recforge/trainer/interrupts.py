"""Ctrl-C and SIGTERM during ``Trainer.fit``: stop at once, report the last checkpoint written."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from recforge.errors import TrainingInterrupted
from recforge.trainer import distributed

logger = logging.getLogger("recforge")


@contextmanager
def interruptible(trainer: Any) -> Iterator[None]:
    """While fit runs: SIGTERM becomes KeyboardInterrupt, and either ends fit (``on_fit_end`` still runs) with a
    ``TrainingInterrupted`` naming the last ``last.pth`` written (an interrupt while callbacks end an epoch comes
    before that epoch's checkpoint: the one before resumes); the run folder's lock is let go in any case."""
    previous = None
    if threading.current_thread() is threading.main_thread():

        def on_term(signum, frame):
            raise KeyboardInterrupt(f"signal {signum}")

        previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    except KeyboardInterrupt:
        trainer._emit("on_fit_end")
        checkpoint, epoch = None, trainer.start_epoch - 1
        if trainer.saved and trainer.trainable and trainer.folder_ready and trainer.checkpoint_path("last").is_file():
            checkpoint, epoch = trainer.checkpoint_path("last"), trainer.checkpoints.saved_epoch
        interrupted = TrainingInterrupted(epoch, checkpoint)
        if distributed.is_main_process():
            logger.warning("%s", interrupted)
        raise interrupted from None
    finally:
        trainer.files.unlock()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
