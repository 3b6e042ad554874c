"""Evaluation loaders: batches of users for full ranking, of users with sampled candidates, and of labelled rows.

Sampled evaluation draws its negatives from a generator seeded by ``seed`` and the phase, so every evaluation of a
run (and every run with the seed) scores the same candidates.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch

from recforge.data.dataset import Dataset
from recforge.data.interaction import Interaction
from recforge.data.loaders.view import DatasetView, EvalBatch, RankingBatches, _columns
from recforge.data.split.history import UserHistory, csr_positions
from recforge.data.split.sampler import NegativeSampler
from recforge.utils.arrays import batch_block_bounds


class FullSortEvalDataLoader(RankingBatches):
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
