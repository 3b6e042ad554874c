"""Splitting interactions into train / valid / test, RecBole's rules vectorised over users.

1. Order: RO shuffles all interactions with a generator seeded by ``seed``; TO sorts them by ``TIME_FIELD``
   (stable, so ties keep file order).
2. Group: with ``group_by: user`` each user's interactions are split on their own, in that order; with none
   the whole sequence is split once.
3. Split: RS ratios give each later part ``int(ratio * n)`` interactions and the first part the rest; a later
   part whose share is between 0 and 1 interaction gets one while the train part keeps more than one
   (RecBole's ``_calcu_split_ids``). LS leaves each user's last one (test_only, valid_only) or two
   (valid_and_test) interactions out; a user with too few keeps at least one for training, and the ones left
   out go to the last parts first (RecBole's ``_split_index_by_leave_one_out``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from recforge.data.dataset import Dataset

from recforge.data.atomic import take
from recforge.errors import ConfigError


def ordering(dataset: Dataset) -> np.ndarray:
    """Row indices of ``dataset.inter_feat`` in the order eval_args.order asks for."""
    config = dataset.config
    n = dataset.inter_num
    if config["eval_args"]["order"] == "TO":
        time = dataset.inter_feat.get(dataset.time_field)
        if not isinstance(time, np.ndarray):
            raise ConfigError(
                f"eval_args.order TO needs the time column {dataset.time_field!r}, which is not loaded; "
                f"add it to load_col.inter"
            )
        return np.argsort(time, kind="stable")
    return np.random.default_rng(config["seed"]).permutation(n)


def ratio_counts(totals: np.ndarray, ratios: list[float]) -> np.ndarray:
    """Sizes [len(ratios), len(totals)] of each part for groups of ``totals`` interactions (RecBole's rule)."""
    ratio_sum = sum(ratios)
    ratios = [r / ratio_sum for r in ratios]
    totals = np.asarray(totals, dtype=np.int64)
    counts = np.stack([np.floor(r * totals).astype(np.int64) for r in ratios])
    counts[0] = totals - counts[1:].sum(axis=0)
    active = np.ones(len(totals), dtype=bool)
    for i in range(1, len(ratios)):
        active &= counts[0] > 1
        share = ratios[-i] * totals
        bump = active & (share > 0) & (share < 1)
        counts[-i] += bump
        counts[0] -= bump
    return counts


def leave_one_out_counts(totals: np.ndarray, mode: str) -> np.ndarray:
    """Sizes [3, len(totals)] (train, valid, test) of a leave-one-out split of groups of ``totals``."""
    totals = np.asarray(totals, dtype=np.int64)
    leave = 2 if mode == "valid_and_test" else 1
    legal = np.minimum(leave, totals - 1).clip(min=0)
    counts = np.zeros((3, len(totals)), dtype=np.int64)
    counts[0] = totals - legal
    if mode == "valid_and_test":
        counts[2] = (legal >= 1).astype(np.int64)
        counts[1] = (legal >= 2).astype(np.int64)
    elif mode == "test_only":
        counts[2] = legal
    else:  # valid_only
        counts[1] = legal
    return counts


def split_indices(dataset: Dataset) -> list[np.ndarray]:
    """Row indices of ``[train, valid, test]``, each in the chosen order."""
    args = dataset.config["eval_args"]
    order = ordering(dataset)
    if args["group_by"] == "user":
        users = dataset.inter_feat[dataset.uid_field][order]
        by_user = np.argsort(users, kind="stable")
        sorted_users = users[by_user]
        totals = np.bincount(sorted_users, minlength=dataset.user_num)
        starts = np.concatenate(([0], np.cumsum(totals)[:-1]))
        rank = np.empty(len(order), dtype=np.int64)
        rank[by_user] = np.arange(len(order)) - starts[sorted_users]
        group = users
    else:
        totals = np.array([len(order)])
        rank = np.arange(len(order))
        group = np.zeros(len(order), dtype=np.int64)
    split = args["split"]
    counts = ratio_counts(totals, split["RS"]) if "RS" in split else leave_one_out_counts(totals, split["LS"])
    if len(counts) == 2:
        counts = np.stack([counts[0], np.zeros_like(counts[0]), counts[1]])
    train_end = counts[0][group]
    valid_end = train_end + counts[1][group]
    part = np.where(rank < train_end, 0, np.where(rank < valid_end, 1, 2))
    return [order[part == p] for p in range(3)]


def split_dataset(dataset: Dataset) -> list[Dataset]:
    """``[train, valid, test]`` datasets sharing ``dataset``'s vocabularies and features; ``unused_col``
    columns are dropped from the parts (they could still order the split)."""
    parts = [dataset.copy(take(dataset.inter_feat, rows)) for rows in split_indices(dataset)]
    for part in parts:
        part.drop_unused()
    return parts
