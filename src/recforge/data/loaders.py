"""Data loaders: training batches (with negatives) and full-ranking evaluation batches.

All data lives in CPU tensors built once; a batch is a slice. Each training loader owns a seeded
``torch.Generator`` used for shuffling and sampling, so an epoch's batches depend only on the seed and the
epoch, never on batch sizes elsewhere or on workers. Batches stay on the CPU; the Trainer moves them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch

from recforge.data.atomic import SeqColumn
from recforge.data.dataset import Dataset
from recforge.data.history import UserHistory
from recforge.data.interaction import Interaction
from recforge.data.sampler import NegativeSampler
from recforge.errors import ConfigError

EvalBatch = tuple[Interaction, tuple[torch.Tensor, torch.Tensor], torch.Tensor, torch.Tensor]


def _column_tensor(values: np.ndarray) -> torch.Tensor:
    if values.dtype.kind == "f":
        return torch.from_numpy(values.astype(np.float32))
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.int64))


class TrainDataLoader:
    """Batches of training interactions, reshuffled every epoch.

    Each batch is an ``Interaction`` with every non-sequence column of ``inter_feat`` ([B]) and, when a
    sampler is given, ``NEG_PREFIX + ITEM_ID_FIELD`` holding [B] negatives (or [B, N] for sample_num N > 1).

    Args:
        config: the run config (train_batch_size, shuffle, seed, NEG_PREFIX, train_neg_sample_args).
        dataset: the training split.
        sampler: draws negatives; None for models that need none.
        shuffle: reshuffle every epoch (config "shuffle" by default).
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        dataset: Dataset,
        sampler: NegativeSampler | None = None,
        shuffle: bool | None = None,
    ) -> None:
        self.config = config
        self.dataset = dataset
        self._dataset = dataset  # RecBole's attribute name
        self.sampler = sampler
        self.batch_size: int = config["train_batch_size"]
        self.shuffle = config["shuffle"] if shuffle is None else shuffle
        neg_args = config["train_neg_sample_args"] or {}
        self.sample_num: int = neg_args.get("sample_num", 1)
        self.neg_field = config["NEG_PREFIX"] + dataset.iid_field
        self.uid_field = dataset.uid_field
        self.columns = {
            name: _column_tensor(col) for name, col in dataset.inter_feat.items() if not isinstance(col, SeqColumn)
        }
        self.generator = torch.Generator().manual_seed(config["seed"])

    def __len__(self) -> int:
        return math.ceil(self.dataset.inter_num / self.batch_size)

    @property
    def sample_size(self) -> int:
        """Number of training interactions per epoch."""
        return self.dataset.inter_num

    def _epoch_order(self) -> torch.Tensor:
        n = self.dataset.inter_num
        if self.shuffle:
            return torch.randperm(n, generator=self.generator)
        return torch.arange(n)

    def __iter__(self) -> Iterator[Interaction]:
        order = self._epoch_order()
        columns = {name: col[order] for name, col in self.columns.items()}
        if self.sampler is not None:
            negatives = self.sampler.sample(columns[self.uid_field], self.sample_num, self.generator)
            columns[self.neg_field] = negatives.squeeze(1) if self.sample_num == 1 else negatives
        for start in range(0, len(order), self.batch_size):
            yield Interaction({name: col[start : start + self.batch_size] for name, col in columns.items()})

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The generator state: restoring it replays the same future epochs."""
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self.generator.set_state(state["generator"])


class FullSortEvalDataLoader:
    """Batches of users for full ranking, in RecBole's format.

    Each batch is ``(interaction, (history_rows, history_items), positive_rows, positive_items)``: the users
    (``interaction[USER_ID_FIELD]``, [B]), the items to mask for them (what they saw in earlier splits) and
    their positives in this split. Rows index into the batch. Users without positives are not evaluated.

    Args:
        config: the run config (eval_batch_size: users per batch).
        dataset: the split to evaluate.
        history: items to exclude from each user's ranking.
    """

    def __init__(self, config: Mapping[str, Any], dataset: Dataset, history: UserHistory) -> None:
        self.config = config
        self.dataset = dataset
        self._dataset = dataset
        self.history = history
        self.positives = UserHistory.from_datasets(dataset)
        self.users = torch.nonzero(self.positives.lengths > 0).flatten()
        self.batch_size: int = config["eval_batch_size"]
        self.uid_field = dataset.uid_field
        self.n_items = dataset.item_num

    def __len__(self) -> int:
        return math.ceil(len(self.users) / self.batch_size)

    @property
    def user_count(self) -> int:
        return len(self.users)

    def __iter__(self) -> Iterator[EvalBatch]:
        for start in range(0, len(self.users), self.batch_size):
            users = self.users[start : start + self.batch_size]
            history = self.history.gather(users)
            pos_rows, pos_items = self.positives.gather(users)
            yield Interaction({self.uid_field: users}), history, pos_rows, pos_items


def create_samplers(config: Mapping[str, Any], train: Dataset, history: UserHistory) -> NegativeSampler | None:
    """The training sampler the config asks for, or None (no train_neg_sample_args)."""
    args = config["train_neg_sample_args"]
    if not args:
        return None
    counts = None
    if args["distribution"] == "popularity":
        counts = np.bincount(train.inter_feat[train.iid_field], minlength=train.item_num)
    return NegativeSampler(history, args["distribution"], counts, args["alpha"])


def data_preparation(
    config: Mapping[str, Any], dataset: Dataset
) -> tuple[TrainDataLoader, FullSortEvalDataLoader | None, FullSortEvalDataLoader | None]:
    """Split ``dataset`` and build ``(train_data, valid_data, test_data)``; an empty split gives None.

    Validation masks each user's training items; testing masks training and validation items.
    """
    from recforge.models.base import InputType

    model_class = getattr(config, "model_class", None)
    max_k = max(config["topk"])
    if max_k > dataset.item_num - 1:
        raise ConfigError(f"config key 'topk': {max_k} exceeds the number of items ({dataset.item_num - 1})")
    train, valid, test = dataset.build()
    train_history = UserHistory.from_datasets(train)
    sampler = None
    if model_class is None or model_class.input_type == InputType.PAIRWISE:
        sampler = create_samplers(config, train, train_history)
        if model_class is not None and sampler is None:
            raise ConfigError(
                f"{model_class.__name__} is trained on pairs (positive, negative) and needs negative sampling; "
                "set train_neg_sample_args, e.g. {distribution: uniform, sample_num: 1}"
            )
    train_data = TrainDataLoader(config, train, sampler)
    valid_data = FullSortEvalDataLoader(config, valid, train_history) if valid.inter_num else None
    test_data = None
    if test.inter_num:
        seen = UserHistory.from_datasets(train, valid) if valid.inter_num else train_history
        test_data = FullSortEvalDataLoader(config, test, seen)
    return train_data, valid_data, test_data
