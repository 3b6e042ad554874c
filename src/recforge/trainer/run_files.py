"""``RunFiles``: where one trainer writes, its run folder opened on first use (``recforge.trainer.run_folder``).

A new run gets a new folder under ``checkpoint_dir``. A run resumed from ``<run>/checkpoints/last.pth`` continues
in ``<run>`` (its history cut back to the checkpoint's epoch, leftovers of killed writes removed); from any other
checkpoint it continues in a new folder that starts with the source's history up to that epoch. The folder is
locked while fit runs, so two processes never write one run.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from recforge.errors import CheckpointError
from recforge.trainer.checkpoint import save_checkpoint
from recforge.trainer.run_folder import RunFolder
from recforge.utils.files import remove_leftovers

logger = logging.getLogger("recforge")


class RunFiles:
    """A trainer's run folder and checkpoints (see the module docstring). ``run_dir`` None: a new folder under
    ``config["checkpoint_dir"]``, made when first used."""

    def __init__(self, config: Mapping[str, Any], run_dir: str | Path | None = None) -> None:
        self.config = config
        self.run_folder = RunFolder(run_dir) if run_dir is not None else None
        self.ready = False  # the folder exists and this run writes into it
        self.source: RunFolder | None = None  # the run a resumed run continues
        self.source_epoch = -1
        self.in_place = False
        self.best_in_memory: dict[str, Any] | None = None  # the best weights of a fit with saved=False

    @property
    def run_dir(self) -> Path | None:
        """The run folder's path, once known (None before the first write of a new run)."""
        return self.run_folder.path if self.run_folder is not None else None

    def folder(self) -> RunFolder:
        """The run folder, created (or, for a resumed run, reopened) and locked on first use: config.yaml
        written, the run log sent to its run.log."""
        if self.ready:
            return self.run_folder
        if self.run_folder is None:
            self.run_folder = RunFolder.create(self.config)
        self.run_folder.path.mkdir(parents=True, exist_ok=True)
        self.run_folder.lock()  # before anything in it changes; fit lets it go when it ends
        if self.source is not None and self.in_place:
            self.run_folder.write_history(self.run_folder.history(self.source_epoch))
            for leftover in remove_leftovers(self.run_folder.path) + remove_leftovers(self.run_folder.checkpoints):
                logger.info("removed %s, left by a write that was killed", leftover)
        elif self.source is not None:
            self.run_folder.branch(self.source, self.source_epoch)
            logger.info("continuing %s after epoch %d in a new run folder", self.source, self.source_epoch)
        self.run_folder.write_config(self.config)
        self.run_folder.open_log()
        self.ready = True
        logger.info("run folder: %s", self.run_folder)
        return self.run_folder

    def resume_from(self, checkpoint: str | Path, epoch: int) -> None:
        """Plan where a run resumed from ``checkpoint`` (of ``epoch``) writes (see the module docstring)."""
        self.source = RunFolder.of_checkpoint(checkpoint)
        self.source_epoch = epoch
        self.in_place = self.source is not None and Path(checkpoint).name == "last.pth"
        if self.run_folder is not None and self.source is not None and self.run_folder.path != self.source.path:
            self.in_place = False
        if self.in_place and self.run_folder is None:
            self.run_folder = self.source
        self.ready = False

    def checkpoint(self, kind: str) -> Path:
        """``checkpoints/<kind>.pth`` ("last" or "best") of the run folder (opened first)."""
        return self.folder().checkpoint(kind)

    def save(self, state: dict[str, Any], kind: str) -> Path:
        """Write ``state`` as ``checkpoints/<kind>.pth``, atomically."""
        return save_checkpoint(state, self.checkpoint(kind))

    def link(self, source: str, target: str) -> Path:
        """Make checkpoint ``target`` the same file as ``source`` (a hard link, or a copy), atomically."""
        src, dst = self.checkpoint(source), self.checkpoint(target)
        tmp = dst.with_name(f".{dst.name}.link")
        tmp.unlink(missing_ok=True)
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
        return dst

    def best(self) -> Path | None:
        """The run's best checkpoint so far: this folder's ``best.pth``, or, before a resumed run has written
        anything, the one of the run it continues."""
        candidates = [self.run_folder.checkpoint("best")] if self.run_folder is not None else []
        if self.source is not None and not self.ready:
            candidates.append(self.source.checkpoint("best"))
        return next((path for path in candidates if path.is_file()), None)

    def keep_in_memory(self, model: Any) -> None:
        """Copy ``model``'s current weights as the best model (fit with ``saved=False`` writes no ``best.pth``)."""
        self.best_in_memory = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}

    def unlock(self) -> None:
        """Let the run folder's lock go (fit has ended)."""
        if self.run_folder is not None:
            self.run_folder.unlock()


def load_best_weights(trainer: Any) -> None:
    """Give ``trainer.model`` the best weights of its run: its ``best.pth``, or the copy kept in memory when fit
    ran with ``saved=False`` (the current weights when none was kept); a CheckpointError before any fit."""
    epoch = f"epoch {trainer.best_epoch}" if trainer.best_epoch is not None else "the last epoch"
    best = trainer.files.best() if trainer.saved else None
    if best is not None:
        trainer._load_weights(best)
        logger.info("evaluating the best model of this run (%s, %s)", epoch, best)
    elif trainer.files.best_in_memory is not None:
        trainer.model.load_state_dict(trainer.files.best_in_memory)
        logger.info("evaluating the best model of this run (%s, kept in memory: saved=False)", epoch)
    elif trainer.has_fit:
        logger.info("evaluating the current weights (no best model was kept)")
    else:
        raise CheckpointError(
            "evaluate(load_best_model=True) needs a best model, but fit has not run: call fit first, "
            "pass model_file, or use load_best_model=False"
        )
