"""``Interaction``: one batch, a mapping of column name -> tensor whose first dimension is the batch."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch


class Interaction(Mapping):
    """A batch of columns (RecBole's ``Interaction``): ``batch["user_id"]`` is a tensor of shape [B, ...].

    Indexing with an int, slice or index tensor selects rows and returns a new Interaction.
    """

    __slots__ = ("_data", "share")

    def __init__(self, data: Mapping[str, torch.Tensor], share: float = 1.0) -> None:
        self._data = dict(data)
        self.share = share  # distributed training: this rank's slice of the global batch (see loaders.rank_slices)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return self._data[key]
        return Interaction({k: v[key] for k, v in self._data.items()})

    def __setitem__(self, key: str, value: torch.Tensor) -> None:
        self._data[key] = value

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        """The batch size (first dimension of the columns)."""
        for value in self._data.values():
            return int(value.shape[0])
        return 0

    @property
    def columns(self) -> list[str]:
        return list(self._data)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Interaction:
        """A copy with every tensor on ``device``."""
        return Interaction({k: v.to(device, non_blocking=non_blocking) for k, v in self._data.items()}, self.share)

    def update(self, other: Mapping[str, torch.Tensor]) -> None:
        self._data.update(other)

    def __repr__(self) -> str:
        cols = ", ".join(f"{k}: {tuple(v.shape)} {str(v.dtype).replace('torch.', '')}" for k, v in self._data.items())
        return f"Interaction({cols})"
