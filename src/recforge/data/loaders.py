"""Data loaders: training batches (pairwise, pointwise or plain) and evaluation batches (full ranking, sampled
ranking, labelled rows).

All data lives in CPU tensors built once; a batch is a slice. Each training loader owns a seeded
``torch.Generator`` used for shuffling and sampling, so an epoch's batches depend only on the seed and the
epoch. Sampled evaluation draws its negatives once, when the loader is built, from a generator seeded by
``seed`` and the phase, so every evaluation of a run (and every run with the seed) scores the same candidates.
Batches stay on the CPU; the Trainer moves them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch

from recforge.data.columns import SeqColumn
from recforge.data.dataset import Dataset
from recforge.data.history import UserHistory, csr_positions
from recforge.data.interaction import Interaction
from recforge.data.sampler import NegativeSampler
from recforge.utils.arrays import batch_block_bounds, shard_bounds

EvalBatch = tuple[Interaction, Any, torch.Tensor, torch.Tensor]
PHASE_SEEDS = {"valid": 1, "test": 2}


def _column_tensor(values: np.ndarray) -> torch.Tensor:
    if values.dtype.kind == "f":
        return torch.from_numpy(values.astype(np.float32))
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.int64))


def _columns(dataset: Dataset) -> dict[str, torch.Tensor]:
    return {name: _column_tensor(col) for name, col in dataset.inter_feat.items() if not isinstance(col, SeqColumn)}


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


class TrainDataLoader(DatasetView):
    """Batches of training interactions, reshuffled every epoch.

    A batch is an ``Interaction`` with every non-sequence column of ``inter_feat``. With a sampler:

    - pairwise: ``NEG_PREFIX + ITEM_ID_FIELD`` holds [B] negatives ([B, N] for sample_num N > 1);
    - pointwise: the B positive rows come first (label 1), then N blocks of the same rows with sampled items
      (label 0): B * (1 + N) rows, as RecBole lays them out.

    As in RecBole, ``train_batch_size`` counts the rows a batch would have with the positives repeated once per
    negative: B = train_batch_size // N positives per batch for pairwise models, train_batch_size // (1 + N) for
    pointwise ones (``step``), so RecBole's hyper-parameters carry over.

    Args:
        config: the run config (train_batch_size, shuffle, seed, NEG_PREFIX, LABEL_FIELD, train_neg_sample_args).
        dataset: the training split.
        sampler: draws negatives; None for models that need none.
        pointwise: lay negatives out as labelled rows instead of a negative-item column.
        join: add the users' and items' feature columns to each batch (``Dataset.join``).
        shuffle: reshuffle every epoch (config "shuffle" by default).
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        dataset: Dataset,
        sampler: NegativeSampler | None = None,
        pointwise: bool = False,
        join: bool = False,
        shuffle: bool | None = None,
    ) -> None:
        self.config = config
        self.dataset = dataset
        self._dataset = dataset  # RecBole's attribute name
        self.features = dataset.batch_features()  # the .user / .item features a batch joins when read
        self.sampler = sampler
        self.pointwise = pointwise
        self.join = join
        self.batch_size: int = config["train_batch_size"]
        self.shuffle = config["shuffle"] if shuffle is None else shuffle
        neg_args = config["train_neg_sample_args"] or {}
        self.sample_num: int = neg_args.get("sample_num", 1)
        times = 1 if sampler is None else (1 + self.sample_num if pointwise else self.sample_num)
        self.step: int = max(self.batch_size // times, 1)  # positives per batch (RecBole's ``step``)
        self.times = times  # rows per positive
        self.neg_field = config["NEG_PREFIX"] + dataset.iid_field
        self.label_field = config["LABEL_FIELD"]
        self.uid_field, self.iid_field = dataset.uid_field, dataset.iid_field
        self.columns = _columns(dataset)
        self.generator = torch.Generator().manual_seed(config["seed"])
        self.rank, self.world = 0, 1
        self.pin_memory = False  # the trainer sets it on CUDA: epoch columns in page-locked memory, copied async

    @property
    def _batch_size(self) -> int:
        return self.step * self.times

    def shard(self, rank: int, world: int) -> None:
        """Yield slice ``rank`` of ``world`` of every batch (distributed training): the batches, their order and
        negatives stay those of one process, so the ranks together train on each whole batch. A last batch
        with fewer positives than ``world`` is dropped (it cannot give every rank a row)."""
        self.rank, self.world = rank, world

    def __len__(self) -> int:
        n = self.dataset.inter_num
        dropped = int(self.world > 1 and 0 < n % self.step < self.world)
        return math.ceil(n / self.step) - dropped

    @property
    def sample_size(self) -> int:
        """Number of training interactions per epoch."""
        return self.dataset.inter_num

    def _epoch_order(self) -> torch.Tensor:
        n = self.dataset.inter_num
        return torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)

    def __iter__(self) -> Iterator[Interaction]:
        order = self._epoch_order()
        if self.pin_memory and torch.cuda.is_available():  # page-locked, for asynchronous copies
            columns = {name: _pinned_take(col, order) for name, col in self.columns.items()}
        else:  # one parallel gather per column and epoch: faster than 2 x 9,835 small gathers on 25M rows
            columns = {name: col[order] for name, col in self.columns.items()}
        negatives = None
        if self.sampler is not None:
            negatives = self.sampler.sample(columns[self.uid_field], self.sample_num, self.generator)
            if not self.pointwise:
                columns[self.neg_field] = negatives.squeeze(1) if self.sample_num == 1 else negatives
        for start, end, share in rank_slices(len(order), self.step, self.rank, self.world):
            batch = {name: col[start:end] for name, col in columns.items()}
            if self.pointwise and negatives is not None:
                batch = self._pointwise(batch, negatives[start:end])
            if self.join:
                batch = self.dataset.join(batch)
            yield Interaction(batch, share=share, features=self.features)

    def _pointwise(self, batch: dict[str, torch.Tensor], negatives: torch.Tensor) -> dict[str, torch.Tensor]:
        copies = 1 + negatives.shape[1]
        out = {name: col.repeat(copies, *([1] * (col.dim() - 1))) for name, col in batch.items()}
        out[self.iid_field] = torch.cat([batch[self.iid_field], negatives.T.reshape(-1)])
        size = len(batch[self.iid_field])
        labels = torch.zeros(size * copies)
        labels[:size] = 1.0
        out[self.label_field] = labels
        return out

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The generator state: restoring it replays the same future epochs."""
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self.generator.set_state(state["generator"])


class FullSortEvalDataLoader(DatasetView):
    """Batches of users for full ranking, in RecBole's format.

    Each batch is ``(interaction, (history_rows, history_items), positive_rows, positive_items)``: the users
    (``interaction[USER_ID_FIELD]``, [B]), the items to mask for them and their positives in this split. Rows
    index into the batch. Users without positives are not evaluated.

    The mask is RecBole's: the items a user had in earlier splits, minus the user's positives in this split, so
    an item consumed again (repeat consumption) is a candidate and a positive.

    Args:
        config: the run config (eval_batch_size: users per batch).
        dataset: the split to evaluate.
        history: each user's items of the earlier splits (unused, may be None, when ``mask`` is given).
        item_counts: training interactions per item (for popularity-based metrics).
        positives: the users' items in ``dataset`` (default: computed from it).
        mask: ``history`` minus ``positives`` (default: computed).
    """

    mode = "full"
    phase: str | None = None  # "valid" or "test", set by data_preparation

    def __init__(
        self,
        config: Mapping[str, Any],
        dataset: Dataset,
        history: UserHistory | None,
        item_counts: np.ndarray | None = None,
        *,
        positives: UserHistory | None = None,
        mask: UserHistory | None = None,
    ) -> None:
        self.config = config
        self.dataset = dataset
        self._dataset = dataset
        self.features = dataset.batch_features()
        self.item_counts = item_counts
        self.positives = positives if positives is not None else UserHistory.from_datasets(dataset)
        self.history = mask if mask is not None else history.minus(self.positives)
        self.users = self.all_users = torch.nonzero(self.positives.lengths > 0).flatten()
        self.batch_size: int = config["eval_batch_size"]
        self.uid_field = dataset.uid_field
        self.n_items = dataset.item_num
        self._batches: list[EvalBatch] | None = None

    def __len__(self) -> int:
        return math.ceil(len(self.users) / self.batch_size)

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

    def _build_batches(self) -> Iterator[EvalBatch]:
        for start in range(0, len(self.users), self.batch_size):
            users = self.users[start : start + self.batch_size]
            history = self.history.gather(users)
            pos_rows, pos_items = self.positives.gather(users)
            yield Interaction({self.uid_field: users}, features=self.features), history, pos_rows, pos_items


class SampledEvalDataLoader(FullSortEvalDataLoader):
    """Batches of users ranked against their positives and N sampled negatives per positive (uniN / popN).

    Each batch is ``(pairs, rows, positive_rows, positive_items)``: ``pairs`` holds every (user, candidate item)
    to score with ``model.predict`` and ``rows`` [P] the batch row of each pair; RecBole's
    ``NegSampleEvalDataLoader`` format. Negatives avoid the user's items in this and earlier splits and are
    drawn once, when the loader is first read (RecBole's loaders draw while they are read too), from a generator
    seeded by ``seed``.

    Args:
        config: the run config.
        dataset: the split to evaluate.
        exclude: each user's items up to and including this split.
        sample_num: N negatives per positive.
        sampler: draws the negatives (uniform or popularity).
        seed: the generator's seed.
        item_counts: training interactions per item (for popularity-based metrics).
        positives: the users' items in ``dataset`` (default: computed from it).
    """

    mode = "sampled"

    def __init__(
        self,
        config: Mapping[str, Any],
        dataset: Dataset,
        exclude: UserHistory,
        sample_num: int,
        sampler: NegativeSampler,
        seed: int,
        item_counts: np.ndarray | None = None,
        positives: UserHistory | None = None,
    ) -> None:
        super().__init__(config, dataset, exclude, item_counts, positives=positives)
        self.iid_field = dataset.iid_field
        self.sample_num = sample_num
        self.sampler = sampler
        self.seed = seed
        self._negatives: torch.Tensor | None = None  # drawn when first read

    @property
    def negatives(self) -> torch.Tensor:
        """[P, N] negatives of the positives, in user order (drawn on first use)."""
        if self._negatives is None:
            self._draw()
        return self._negatives

    def _draw(self) -> None:
        """Draw every user's negatives once, from a generator seeded by ``seed`` (the same whenever drawn), and lay
        out the candidates: per user its positives, then the negatives of each positive."""
        sample_num = self.sample_num
        pos_users = torch.repeat_interleave(torch.arange(self.positives.n_users), self.positives.lengths)
        self._negatives = self.sampler.sample(pos_users, sample_num, torch.Generator().manual_seed(self.seed))
        counts = self.positives.lengths * (1 + sample_num)
        self.indptr = torch.zeros(len(counts) + 1, dtype=torch.int64)
        torch.cumsum(counts, 0, out=self.indptr[1:])
        neg_starts = self.positives.indptr[:-1] * sample_num
        self.candidates = torch.empty(int(self.indptr[-1]), dtype=torch.int64)
        rank_in_user = torch.arange(len(pos_users)) - self.positives.indptr[pos_users]
        self.candidates[self.indptr[pos_users] + rank_in_user] = self.positives.items
        neg_flat = self._negatives.reshape(-1)
        neg_users = pos_users.repeat_interleave(sample_num)
        neg_rank = torch.arange(len(neg_flat)) - neg_starts[neg_users]
        self.candidates[self.indptr[neg_users] + self.positives.lengths[neg_users] + neg_rank] = neg_flat

    @property
    def neg_sample_args(self) -> dict[str, Any]:
        """RecBole's attribute: how the candidates' negatives are drawn."""
        return {"distribution": self.sampler.distribution, "sample_num": self.sample_num}

    def _build_batches(self) -> Iterator[EvalBatch]:
        if self._negatives is None:
            self._draw()
        for start in range(0, len(self.users), self.batch_size):
            users = self.users[start : start + self.batch_size]
            rows, flat = csr_positions(self.indptr, users)
            pairs = {self.uid_field: users[rows], self.iid_field: self.candidates[flat]}
            pairs = Interaction(pairs, features=self.features)
            pos_rows, pos_items = self.positives.gather(users)
            yield pairs, rows, pos_rows, pos_items


class LabeledEvalDataLoader(DatasetView):
    """Batches of the split's interactions with their labels, for value metrics (``eval_args.mode: labeled``).

    Each batch is ``(interaction, None, None, None)``; ``interaction`` holds every non-sequence column,
    including ``LABEL_FIELD``. ``eval_batch_size`` counts rows here.
    """

    mode = "labeled"
    phase: str | None = None

    def __init__(self, config: Mapping[str, Any], dataset: Dataset, join: bool = False) -> None:
        self.config = config
        self.dataset = dataset
        self._dataset = dataset
        self.features = dataset.batch_features()
        self.label_field = config["LABEL_FIELD"]  # without it the rows can be read, not scored (score_loader)
        self.columns = _columns(dataset)
        self.batch_size: int = config["eval_batch_size"]
        self.join = join
        self.item_counts = None
        self.rows = (0, dataset.inter_num)

    def shard(self, rank: int, world: int) -> None:
        """Score block ``rank`` of ``world`` contiguous blocks of the rows, made of whole batches of one process
        (distributed evaluation; vectorised kernels treat a batch's last elements apart, so a row scored in another
        batch position can differ in its last bit)."""
        self.rows = batch_block_bounds(self.dataset.inter_num, self.batch_size, rank, world)

    def __len__(self) -> int:
        return math.ceil((self.rows[1] - self.rows[0]) / self.batch_size)

    def __iter__(self) -> Iterator[EvalBatch]:
        first, last = self.rows
        for start in range(first, last, self.batch_size):
            end = min(start + self.batch_size, last)
            batch = {name: col[start:end] for name, col in self.columns.items()}
            yield (
                Interaction(self.dataset.join(batch) if self.join else batch, features=self.features),
                None,
                None,
                None,
            )
