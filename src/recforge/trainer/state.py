"""The complete training state of a ``Trainer``: what a checkpoint holds, writing it, and resuming from it.

``TrainingState`` is a part of ``Trainer`` (a mixin). A checkpoint is the state after an epoch (see
``recforge.trainer.checkpoint`` for the layout); restoring it makes the next ``fit`` continue exactly as if the
run had never stopped. Where the resumed run writes is decided here too (``recforge.trainer.run_folder``):
``<run>/checkpoints/last.pth`` continues in ``<run>``; any other checkpoint starts a new run folder.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from recforge.config.machine import PROCESS_KEYS, processes
from recforge.trainer import distributed
from recforge.trainer.checkpoint import load_checkpoint, load_model_state, save_checkpoint
from recforge.trainer.events import callback_keys, stable_callback_keys
from recforge.trainer.run_folder import RunFolder
from recforge.utils.files import remove_leftovers
from recforge.utils.rng import capture_rng_state, restore_rng_state

logger = logging.getLogger("recforge")

# Config keys that may differ on resume without changing the run.
RESUME_NEUTRAL_KEYS = frozenset(
    {
        "epochs",
        "show_progress",
        "state",
        "checkpoint_dir",
        "data_path",
        "device",
        "use_gpu",
        "gpu_id",
        "eval_batch_size",
        "metric_decimal_place",
        "loss_decimal_place",
        "tensorboard",
        "data_cache",
        "ip",
        "port",
        "offset",
        *PROCESS_KEYS,  # said apart: another number of processes changes the summation order only
    }
)


class TrainingState:
    """Checkpoints and resume for a ``Trainer`` (see the module docstring)."""

    # -- the run folder ----------------------------------------------------------------------------
    @property
    def run_dir(self) -> Path | None:
        """The run folder's path, once it is known (None before the first write of a new run)."""
        return self.run_folder.path if self.run_folder is not None else None

    def folder(self) -> RunFolder:
        """The run folder, created (or, for a resumed run, reopened) on first use: config.yaml written, the run log
        sent to its run.log."""
        if self._folder_ready:
            return self.run_folder
        source, epoch, in_place = self._resume_plan or (None, -1, False)
        if self.run_folder is None:
            self.run_folder = RunFolder.create(self.config)
        self.run_folder.path.mkdir(parents=True, exist_ok=True)
        self.run_folder.lock()  # before anything in it changes; fit lets it go when it ends
        if source is not None and in_place:
            self.run_folder.write_history(self.run_folder.history(epoch))
            for leftover in remove_leftovers(self.run_folder.path) + remove_leftovers(self.run_folder.checkpoints):
                logger.info("removed %s, left by a write that was killed", leftover)
        elif source is not None:
            self.run_folder.branch(source, epoch)
            logger.info("continuing %s after epoch %d in a new run folder", source, epoch)
        self.run_folder.write_config(self.config)
        self.run_folder.open_log()
        self._folder_ready = True
        logger.info("run folder: %s", self.run_folder)
        return self.run_folder

    @property
    def folder_ready(self) -> bool:
        """Whether the run folder exists and this run writes into it (config.yaml and run.log are there)."""
        return self._folder_ready

    @property
    def train_data(self) -> Any:
        """The training loader of the last ``fit`` (None before)."""
        return self._train_data

    @contextmanager
    def _run_folder_locked(self) -> Iterator[None]:
        """While fit runs, the run folder is locked (``RunFolder.lock``, taken when the folder is first used)."""
        try:
            yield
        finally:
            if self.run_folder is not None:
                self.run_folder.unlock()

    def best_checkpoint(self) -> Path | None:
        """The best checkpoint of this run so far: this run folder's ``best.pth``, or, before a resumed run has
        written anything, the one of the run it continues."""
        candidates = [self.run_folder.checkpoint("best")] if self.run_folder is not None else []
        if self._resume_plan is not None and self._resume_plan[0] is not None and not self._folder_ready:
            candidates.append(self._resume_plan[0].checkpoint("best"))
        return next((path for path in candidates if path.is_file()), None)

    @property
    def checkpoint_dir(self) -> Path:
        """RecBole's attribute: the folder under which runs are saved (``config["checkpoint_dir"]``)."""
        return Path(self.config["checkpoint_dir"]).expanduser()

    @property
    def saved_model_file(self) -> Path:
        """Where the best checkpoint of this run is (or will be) saved."""
        return self.folder().checkpoint("best")

    def checkpoint_path(self, kind: str) -> Path:
        return self.folder().checkpoint(kind)

    # -- saving ------------------------------------------------------------------------------------
    def state_dict(self, epoch: int) -> dict[str, Any]:
        """The complete training state after ``epoch`` (see ``recforge.trainer.checkpoint`` for the layout)."""
        to_dict = getattr(self.config, "to_dict", None)
        return {
            "model_name": type(self.model).__name__,
            "config": to_dict() if to_dict else dict(self.config),
            "epoch": epoch,
            "model": self.model.state_dict(),
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "schedulers": {name: s.state_dict() for name, s in self.schedulers.items()},
            "scaler": self.precision.scaler.state_dict(),
            "trainer": {
                "cur_step": self.cur_step,
                "best_valid_score": self.best_valid_score,
                "best_valid_result": copy.deepcopy(self.best_valid_result),
                "best_epoch": self.best_epoch,
                "train_loss_dict": dict(self.train_loss_dict),
            },
            "loaders": {name: loader.state_dict() for name, loader in self._loaders().items()},
            "rng": capture_rng_state(),
            "callbacks": {
                key: c.state_dict() for key, c in zip(callback_keys(self.callbacks), self.callbacks, strict=True)
            },
        }

    def save_checkpoint(self, kind: str, epoch: int) -> Path:
        """Write ``checkpoints/<kind>.pth`` atomically and return its path."""
        path = save_checkpoint(self.state_dict(epoch), self.checkpoint_path(kind))
        logger.debug("saved %s checkpoint of epoch %d to %s", kind, epoch, path)
        self._emit("on_checkpoint_save", kind, path)
        return path

    def link_checkpoint(self, source: str, target: str) -> Path:
        """Make checkpoint ``target`` the same file as ``source`` (a hard link, or a copy), atomically."""
        src, dst = self.checkpoint_path(source), self.checkpoint_path(target)
        tmp = dst.with_name(f".{dst.name}.link")
        tmp.unlink(missing_ok=True)
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
        self._emit("on_checkpoint_save", target, dst)
        return dst

    # -- loaders -----------------------------------------------------------------------------------
    def _attach_loaders(self, train_data) -> None:
        self._train_data = train_data
        if hasattr(train_data, "pin_memory"):
            train_data.pin_memory = self.device.type == "cuda"
        if distributed.is_distributed() and hasattr(train_data, "shard"):
            train_data.shard(distributed.rank(), distributed.world_size())
        if self._pending_loader_state is not None:
            for name, loader in self._loaders().items():
                if name in self._pending_loader_state:
                    loader.load_state_dict(self._pending_loader_state[name])
            self._pending_loader_state = None

    def _loaders(self) -> dict[str, Any]:
        """The stateful loaders of the current training data, by name ("train" and its views)."""
        loaders: dict[str, Any] = {}
        if self._train_data is not None and hasattr(self._train_data, "state_dict"):
            loaders["train"] = self._train_data
        for name, view in (getattr(self._train_data, "views", None) or {}).items():
            if hasattr(view, "state_dict") and view is not self._train_data:
                loaders[name] = view
        return loaders

    # -- loading -----------------------------------------------------------------------------------
    def _load_weights(self, path: str | Path) -> dict[str, Any]:
        state = load_checkpoint(path, map_location=self.device)
        load_model_state(self.model, state, path)
        logger.info("loaded model weights from %s (epoch %s)", path, state.get("epoch"))
        return state

    def resume_checkpoint(self, resume_file: str | Path) -> None:
        """Restore the complete training state of a checkpoint; the next ``fit`` continues exactly where it was.

        From ``<run>/checkpoints/last.pth`` the run continues in ``<run>`` (and evaluates the best model of the
        whole run); from any other checkpoint, such as ``best.pth``, it continues in a new run folder that starts
        with the source run's history up to that epoch, so the source run is left as it was. Config keys that
        differ from the checkpoint's and change the run are named in a warning.
        """
        state = self._load_weights(resume_file)
        self._warn_config_changes(state.get("config", {}), resume_file)
        for name, optimizer_state in state.get("optimizers", {}).items():
            if name in self.optimizers:
                self.optimizers[name].load_state_dict(optimizer_state)
        for name, scheduler_state in state.get("schedulers", {}).items():
            if name in self.schedulers:
                self.schedulers[name].load_state_dict(scheduler_state)
        if state.get("scaler"):
            self.precision.scaler.load_state_dict(state["scaler"])
        trainer_state = state.get("trainer", {})
        epoch = int(state.get("epoch", -1))
        self.start_epoch = epoch + 1
        self.cur_step = int(trainer_state.get("cur_step", 0))
        self.best_valid_score = float(trainer_state.get("best_valid_score", self.best_valid_score))
        self.best_valid_result = trainer_state.get("best_valid_result")
        self.best_epoch = trainer_state.get("best_epoch")
        self.train_loss_dict = {int(k): v for k, v in trainer_state.get("train_loss_dict", {}).items()}
        saved_callbacks = stable_callback_keys(state.get("callbacks", {}))
        for key, callback in zip(callback_keys(self.callbacks), self.callbacks, strict=True):
            if key in saved_callbacks:
                callback.load_state_dict(saved_callbacks.pop(key))
        self._unclaimed_callback_states = saved_callbacks  # for callbacks added later (add_callback)
        self._pending_loader_state = state.get("loaders") or None
        if state.get("rng"):
            restore_rng_state(state["rng"])
        source = RunFolder.of_checkpoint(resume_file)
        in_place = source is not None and Path(resume_file).name == "last.pth"
        if self.run_folder is not None and source is not None and self.run_folder.path != source.path:
            in_place = False
        self._resume_plan = (source, epoch, in_place)
        if in_place and self.run_folder is None:
            self.run_folder = source
        self._folder_ready = False
        self._emit("on_checkpoint_load", Path(resume_file), state)
        logger.info("resumed from %s: training continues at epoch %d", resume_file, self.start_epoch)

    def _warn_config_changes(self, saved: Mapping[str, Any], path: str | Path) -> None:
        to_dict = getattr(self.config, "to_dict", None)
        current = to_dict() if to_dict else dict(self.config)
        changed = sorted(
            k for k in set(saved) | set(current) if k not in RESUME_NEUTRAL_KEYS and saved.get(k) != current.get(k)
        )
        if changed:
            details = "; ".join(f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in changed)
            logger.warning(
                "resuming %s with a different config, so the run will not match the original: %s", path, details
            )
        if saved and processes(saved) != processes(current):
            logger.warning(
                "resuming %s, trained with %d process(es), with %d: the same batches, summed in another order, so "
                "weights and losses follow the original within float rounding (1e-6), not bit for bit",
                path,
                processes(saved),
                processes(current),
            )
