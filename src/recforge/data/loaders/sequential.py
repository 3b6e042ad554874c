"""Evaluation of sequential models: each example (a target and its history) is ranked on its own, RecBole's way.

Full ranking scores every item for each example; the example's target is its one positive, the padding id is
never ranked and, as in RecBole, items the user saw before are ranked too, unless ``mask_history_items`` leaves
them out (the protocol of most papers; the target itself always stays a candidate). Sampled ranking (uniN /
popN) ranks the target against N items drawn once, each different from the target (RecBole's repeatable
sampler). ``eval_batch_size`` counts examples. Batches are built on the first pass and reused.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch

from recforge.data.columns import HISTORY_END
from recforge.data.interaction import Interaction
from recforge.data.loaders.view import EvalBatch, RankingBatches, _columns
from recforge.data.split.history import segment_positions
from recforge.data.split.sampler import TargetSampler


class SequenceEvalDataLoader(RankingBatches):
    """Batches of examples to rank, in the format of ``FullSortEvalDataLoader`` / ``SampledEvalDataLoader`` with
    one row per example (see the module docstring).

    Args:
        config: the run config (eval_batch_size, mask_history_items, seed).
        dataset: the split to evaluate (a ``SequentialDataset`` part).
        item_counts: training targets per item (for popularity-based metrics).
        sampler: draws the candidates of sampled ranking (None: full ranking).
        sample_num: N candidates per example (sampled ranking).
        seed: the seed of the sampled candidates and of the transform's draws.
        transform: applied to every batch (``recforge.data.transform``), None for none.
    """

    phase: str | None = None  # "valid" or "test", set by data_preparation

    def __init__(
        self,
        config: Mapping[str, Any],
        dataset: Any,
        item_counts: np.ndarray | None = None,
        *,
        sampler: TargetSampler | None = None,
        sample_num: int = 0,
        seed: int = 0,
        transform: Any = None,
    ) -> None:
        self.config = config
        self.dataset = dataset
        self._dataset = dataset
        self.features = dataset.batch_features()
        self.item_counts = item_counts
        self.sampler, self.sample_num, self.seed = sampler, sample_num, seed
        self.mode = "full" if sampler is None else "sampled"
        self.transform = transform
        self.mask_history = bool(config.get("mask_history_items")) and sampler is None
        self.batch_size: int = config["eval_batch_size"]
        self.uid_field, self.iid_field = dataset.uid_field, dataset.iid_field
        self.n_items = dataset.item_num
        self.columns = _columns(dataset)
        self.users = self.all_users = torch.arange(dataset.inter_num)  # the examples, each ranked as a user
        self._batches: list[EvalBatch] | None = None

    @property
    def neg_sample_args(self) -> dict[str, Any]:
        """RecBole's attribute: how the candidates are drawn."""
        if self.sampler is None:
            return {"distribution": "none", "sample_num": "none"}
        return {"distribution": self.sampler.distribution, "sample_num": self.sample_num}

    def _build_batches(self) -> Iterator[EvalBatch]:
        generator = torch.Generator().manual_seed(self.seed)
        negatives = None
        if self.sampler is not None:  # drawn for every example, so a shard draws what one process draws
            targets = self.columns[self.iid_field]
            negatives = self.sampler.sample(targets, self.sample_num, generator)
        for start in range(0, len(self.users), self.batch_size):
            rows = self.users[start : start + self.batch_size]
            batch = Interaction({name: col[rows] for name, col in self.columns.items()}, features=self.features)
            if self.transform is not None and self.transform.applies_in_eval:
                batch = self.transform(self.dataset, batch, generator)
            targets = batch[self.iid_field]
            positive_rows = torch.arange(len(rows))
            if negatives is None:
                yield batch, self._seen(batch) if self.mask_history else None, positive_rows, targets
            else:
                pairs, pair_rows = self._pairs(batch, negatives[rows])
                yield pairs, pair_rows, positive_rows, targets

    def _pairs(self, batch: Interaction, negatives: torch.Tensor) -> tuple[Interaction, torch.Tensor]:
        """Every (example, candidate) to score: the target, then its negatives; and each pair's example row."""
        candidates = torch.cat([batch[self.iid_field].unsqueeze(1), negatives], dim=1)
        rows = torch.arange(len(candidates)).repeat_interleave(candidates.shape[1])
        pairs = batch[rows]
        pairs[self.iid_field] = candidates.reshape(-1)
        return pairs, rows

    def _seen(self, batch: Interaction) -> tuple[torch.Tensor, torch.Tensor]:
        """``(rows, items)``: the items each example's user had before its target, the target excepted."""
        values, user_starts = self.dataset.seen_items()
        ends = batch[HISTORY_END]
        if user_starts is None:  # benchmark files: the items of the row's list
            begin = ends - batch[self.dataset.item_list_length_field]
        else:
            begin = torch.from_numpy(user_starts)[batch[self.uid_field]]
        rows, flat = segment_positions(begin, ends - begin)
        items = torch.from_numpy(values)[flat]
        keep = items != batch[self.iid_field][rows]
        return rows[keep], items[keep]
