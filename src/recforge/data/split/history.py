"""``UserHistory``: each user's distinct items as a CSR structure of tensors (CPU)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from recforge.utils.arrays import sort, unique_sorted


@dataclass
class UserHistory:
    """Items of user ``u``: ``items[indptr[u]:indptr[u + 1]]``, distinct and ascending.

    ``keys`` holds ``u * n_items + i`` for every pair, ascending, for vectorised membership tests.
    """

    indptr: torch.Tensor
    items: torch.Tensor
    n_users: int
    n_items: int
    keys: torch.Tensor | None = None  # computed from indptr and items when not given
    _prefilter: tuple[int, torch.Tensor] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_pairs(cls, users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> UserHistory:
        """Build from parallel arrays of user and item ids (repeats are merged)."""
        keys = unique_sorted(np.asarray(users, np.int64) * n_items + np.asarray(items, np.int64))
        return cls._from_keys(keys, n_users, n_items)

    @classmethod
    def _from_keys(cls, keys: np.ndarray, n_users: int, n_items: int) -> UserHistory:
        keys = torch.from_numpy(np.ascontiguousarray(keys))
        indptr = torch.zeros(n_users + 1, dtype=torch.int64)
        torch.cumsum(torch.bincount(keys // n_items, minlength=n_users), 0, out=indptr[1:])
        history = cls(indptr, keys % n_items, n_users, n_items, keys)
        return history

    @classmethod
    def from_datasets(cls, *datasets) -> UserHistory:
        """The union of the interactions of several datasets over the same vocabularies."""
        first = datasets[0]
        users = np.concatenate([d.inter_feat[d.uid_field] for d in datasets])
        items = np.concatenate([d.inter_feat[d.iid_field] for d in datasets])
        return cls.from_pairs(users, items, first.user_num, first.item_num)

    def union(self, *others: UserHistory) -> UserHistory:
        """The union with other histories over the same ids."""
        if len(others) != 1:
            merged = sort(np.concatenate([h.keys.numpy() for h in (self, *others)]))
            if len(merged):
                merged = merged[np.r_[True, merged[1:] != merged[:-1]]]
            return UserHistory._from_keys(merged, self.n_users, self.n_items)
        large, small = (
            (self.keys, others[0].keys) if len(self.keys) >= len(others[0].keys) else (others[0].keys, self.keys)
        )
        small = small[~_member(large, small)]  # the small side's new keys, placed by a search into the large side
        merged = torch.empty(len(large) + len(small), dtype=torch.int64)
        slots = torch.searchsorted(large, small) + torch.arange(len(small))
        taken = torch.zeros(len(merged), dtype=torch.bool)
        taken[slots] = True
        merged[slots] = small
        merged[~taken] = large
        return UserHistory._from_keys(merged.numpy(), self.n_users, self.n_items)

    def minus(self, other: UserHistory) -> UserHistory:
        """The pairs of this history that are not in ``other`` (same ids); the smaller side is searched in the
        larger one (a validation split's 2.5M keys in 20M training keys, not the other way round)."""
        if len(other.keys) < len(self.keys):
            keep = torch.ones(len(self.keys), dtype=torch.bool)
            found = _member(self.keys, other.keys)
            keep[torch.searchsorted(self.keys, other.keys[found])] = False
        else:
            keep = ~other.contains_keys(self.keys)
        return UserHistory._from_keys(self.keys[keep].numpy(), self.n_users, self.n_items)

    def __post_init__(self) -> None:
        if self.keys is None:
            users = torch.repeat_interleave(torch.arange(self.n_users), self.lengths)
            self.keys = users * self.n_items + self.items

    @property
    def lengths(self) -> torch.Tensor:
        """Number of distinct items of every user, [n_users]."""
        return self.indptr[1:] - self.indptr[:-1]

    def contains(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Boolean tensor, same shape as ``items``: whether ``items[...]`` is in the history of ``users[...]``."""
        return self.contains_keys(users * self.n_items + items)

    def contains_keys(self, query: torch.Tensor) -> torch.Tensor:
        """Whether each key ``user * n_items + item`` of ``query`` is in the history.

        Large queries against large histories (an epoch's negatives: 20M candidates, 17M keys) first go through
        a hash table of the keys' presence (no false negatives), so that only the few candidates it cannot
        rule out are binary-searched: one random read instead of ~24 for most candidates.
        """
        keys = self.keys
        if len(keys) == 0:
            return torch.zeros_like(query, dtype=torch.bool)
        if len(query) < PREFILTER_MIN or len(keys) < PREFILTER_MIN:
            return _member(keys, query)
        if self._prefilter is None:
            bits = max(int(4 * len(keys) - 1).bit_length(), 1)  # at most 1 slot in 4 taken
            table = torch.zeros(1 << bits, dtype=torch.bool)
            table[_slot(keys, bits)] = True
            self._prefilter = (bits, table)
        bits, table = self._prefilter
        found = torch.zeros(len(query), dtype=torch.bool)
        maybe = torch.nonzero(table[_slot(query, bits)]).flatten()
        found[maybe] = _member(keys, query[maybe])
        return found

    def gather(self, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(rows, items)`` of all pairs of the given users, ``rows`` indexing into ``users``."""
        rows, flat = csr_positions(self.indptr, users)
        return rows, self.items[flat]


def csr_positions(indptr: torch.Tensor, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For the segments ``indptr[u]:indptr[u + 1]`` of ``users``, in order: ``(rows, flat)``, each entry's index
    into ``users`` and its position in the flat array the segments index."""
    starts = indptr[users]
    return segment_positions(starts, indptr[users + 1] - starts)


def segment_positions(starts: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For segments ``[starts[i], starts[i] + lengths[i])`` of a flat array, in order: ``(rows, flat)``, each
    entry's segment index ``i`` and its position in the flat array."""
    rows = torch.repeat_interleave(torch.arange(len(starts)), lengths)
    first = torch.cumsum(lengths, 0) - lengths
    flat = torch.repeat_interleave(starts - first, lengths) + torch.arange(int(lengths.sum()))
    return rows, flat


def _member(keys: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """Whether each of ``query`` is in the ascending ``keys``."""
    if len(keys) == 0:
        return torch.zeros(len(query), dtype=torch.bool)
    pos = torch.searchsorted(keys, query).clamp_(max=len(keys) - 1)
    return keys[pos] == query


PREFILTER_MIN = 1 << 20  # queries and histories at least this large use the presence table
_GOLDEN = -7046029254386353131  # 0x9E3779B97F4A7C15 as a signed int64: Fibonacci hashing


def _slot(keys: torch.Tensor, bits: int) -> torch.Tensor:
    """A slot in [0, 2 ** bits) for each key: the top bits of key x golden ratio (wrapping int64 product)."""
    return ((keys * _GOLDEN) >> (64 - bits)) & ((1 << bits) - 1)
