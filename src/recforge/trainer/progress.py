"""``TrainingProgress``: the counters of ``Trainer.fit``'s loop, which are what a checkpoint's "trainer" entry holds."""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class TrainingProgress:
    """Where a run is: the next epoch to train, the early-stopping counter, the best validation so far and the
    loss of every epoch trained (RecBole's ``start_epoch``, ``cur_step``, ``best_valid_score``,
    ``best_valid_result``, ``train_loss_dict``; ``best_epoch`` is the epoch of the best result)."""

    start_epoch: int = 0
    cur_step: int = 0
    best_valid_score: float = -math.inf
    best_valid_result: dict[str, float] | None = None
    best_epoch: int | None = None
    train_loss_dict: dict[int, float] = field(default_factory=dict)

    @classmethod
    def starting(cls, bigger_is_better: bool) -> TrainingProgress:
        """The progress before the first epoch: the worst possible best score."""
        return cls(best_valid_score=-math.inf if bigger_is_better else math.inf)

    def record(self, score: float, result: dict[str, float], bigger_is_better: bool) -> bool:
        """Count a validation of the epoch ``start_epoch`` with RecBole's rule (a score equal to or better than the
        best improves and resets ``cur_step``); returns whether it improved."""
        better = score >= self.best_valid_score if bigger_is_better else score <= self.best_valid_score
        if better:
            self.best_valid_score, self.best_valid_result, self.cur_step = score, result, 0
            self.best_epoch = self.start_epoch
        else:
            self.cur_step += 1
        return better

    def finish_epoch(self, epoch: int, validated: bool) -> None:
        """``epoch`` is complete: the next one trains next; without validation the last epoch is the best."""
        self.start_epoch = epoch + 1
        if not validated:
            self.best_epoch = epoch

    def state_dict(self) -> dict[str, Any]:
        """Plain values (what ``checkpoint["trainer"]`` holds)."""
        state = asdict(self)
        state["best_valid_result"] = copy.deepcopy(self.best_valid_result)
        return state

    def load_state_dict(self, state: dict[str, Any], epoch: int) -> None:
        """Continue after ``epoch`` (the checkpoint's) from ``state`` (also of checkpoints written before the
        counters were one record)."""
        self.start_epoch = epoch + 1
        self.cur_step = int(state.get("cur_step", 0))
        self.best_valid_score = float(state.get("best_valid_score", self.best_valid_score))
        self.best_valid_result = state.get("best_valid_result")
        self.best_epoch = state.get("best_epoch")
        self.train_loss_dict = {int(k): v for k, v in state.get("train_loss_dict", {}).items()}


def progress_field(name: str) -> property:
    """A trainer attribute that reads and writes ``trainer.progress.<name>`` (RecBole's attribute names)."""
    return property(lambda self: getattr(self.progress, name), lambda self, value: setattr(self.progress, name, value))
