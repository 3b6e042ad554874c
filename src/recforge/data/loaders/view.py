"""What every loader shares: the view of its data set's attributes, the columns as tensors, and the slices of a
batch each process of a distributed run takes.

All data lives in CPU tensors built once; a batch is a slice. Batches stay on the CPU; the Trainer moves them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from recforge.data.columns import HISTORY_END, HistoryColumn
from recforge.data.dataset import Dataset
from recforge.data.interaction import Interaction
from recforge.utils.arrays import batch_block_bounds, shard_bounds

EvalBatch = tuple[Interaction, Any, torch.Tensor, torch.Tensor]
PHASE_SEEDS = {"valid": 1, "test": 2}


def _column_tensor(values: np.ndarray) -> torch.Tensor:
    if values.dtype.kind == "f":
        return torch.from_numpy(values.astype(np.float32))
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.int64))


def _columns(dataset: Dataset) -> dict[str, torch.Tensor]:
    """The array columns of ``inter_feat`` as tensors; with history lists (sequential data), ``HISTORY_END``: where
    each row's history ends (the lists themselves are gathered per batch, ``BatchFeatures``)."""
    columns = {name: _column_tensor(col) for name, col in dataset.inter_feat.items() if isinstance(col, np.ndarray)}
    for column in dataset.inter_feat.values():
        if isinstance(column, HistoryColumn):
            columns[HISTORY_END] = _column_tensor(column.windows.ends)
            break
    return columns


def _pinned_take(column: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """``column[order]`` written into page-locked memory (its slices copy to a GPU asynchronously)."""
    out = torch.empty((len(order), *column.shape[1:]), dtype=column.dtype, pin_memory=True)
    return torch.index_select(column, 0, order, out=out)


def rank_slices(n: int, batch_size: int, rank: int, world: int) -> Iterator[tuple[int, int, float]]:
    """This rank's ``[start, end)`` of every batch of ``n`` rows in batches of ``batch_size``, and its share:
    rows of the slice x ``world`` / rows of the batch (1.0 in one process). A loss averaged over the slice and
    multiplied by its share has, averaged over the ranks as DDP averages gradients, the batch's mean loss and
    gradient exactly, also when the slices differ by a row. Batches with fewer rows than ``world`` are skipped
    (they cannot give every rank a row)."""
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        if world > 1 and size < world:
            continue
        low, high = shard_bounds(size, rank, world)
        yield start + low, start + high, (high - low) * world / size


class DatasetView:
    """Loaders answer for their data set's attributes too (``train_data.user_num``, ``train_data.num(field)``),
    so code written for RecBole that passes a loader where a data set is expected keeps working."""

    dataset: Dataset

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or "dataset" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.__dict__["dataset"], name)

    @property
    def _batch_size(self) -> int:
        """RecBole's attribute: rows of a training batch (positives x copies), users of an evaluation batch (the
        ``eval_batch_size`` semantics differ from RecBole's: docs/architecture.md)."""
        return self.batch_size


class RankingBatches(DatasetView):
    """What ranking evaluation loaders share: batches of ``batch_size`` of ``users`` (users, or sequential examples
    ranked as users are), built by ``_build_batches`` on the first pass and reused, and distributed evaluation by
    contiguous blocks of ``all_users``."""

    users: torch.Tensor
    all_users: torch.Tensor
    batch_size: int
    _batches: list[EvalBatch] | None

    def __len__(self) -> int:
        return -(-len(self.users) // self.batch_size)

    @property
    def user_count(self) -> int:
        return len(self.users)

    def shard(self, rank: int, world: int) -> None:
        """Evaluate block ``rank`` of ``world`` contiguous blocks of the users (distributed evaluation; the blocks
        in rank order are the users in order). Blocks hold whole batches of one process, so every score is
        computed in the same batch, at the same position, as in one process: metrics are equal bit for bit."""
        low, high = batch_block_bounds(len(self.all_users), self.batch_size, rank, world)
        if len(self.users) != high - low or (len(self.users) and self.users[0] != self.all_users[low]):
            self.users, self._batches = self.all_users[low:high], None

    def __iter__(self) -> Iterator[EvalBatch]:
        """The batches are the same at every evaluation: built on the first pass, then reused."""
        if self._batches is None:
            self._batches = list(self._build_batches())
        return iter(self._batches)

    def _build_batches(self) -> Iterator[EvalBatch]:  # pragma: no cover - abstract
        raise NotImplementedError
