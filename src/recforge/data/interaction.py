"""``Interaction``: one batch, a mapping of column name -> tensor whose first dimension is the batch.

A batch holds what its loader put in it (ids, negatives, labels, context columns) and, as in RecBole, the user's
and the item's features from the ``.user`` / ``.item`` files: ``batch["price"]`` is the price of each row's item,
``batch["neg_price"]`` that of each row's sampled negative (``NEG_PREFIX`` + field), ``batch["age"]`` each row's
user's age. Those are joined when first read (``BatchFeatures``), so a model that reads only ids pays nothing
for them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch

from recforge.data.columns import HISTORY_END, HistoryColumn, SeqColumn


class BatchFeatures:
    """The feature tables a batch joins from: ``user_feat`` / ``item_feat`` indexed by id (RecBole's join).

    ``join(name, columns)`` -> the feature ``name`` of every row of ``columns`` (a tensor shaped like the id
    column, with a trailing dimension for sequence features padded with 0), or None when ``name`` is not a
    feature the batch's ids reach."""

    def __init__(self, user_feat, item_feat, uid_field: str, iid_field: str, neg_prefix: str) -> None:
        self.sources: dict[str, tuple[Any, str]] = {}  # name -> (column, id field)
        for table, id_field in ((user_feat, uid_field), (item_feat, iid_field)):
            for name, column in (table or {}).items():
                if name != id_field:
                    self.sources[name] = (column, id_field)
        for name, column in (item_feat or {}).items():
            self.sources.setdefault(neg_prefix + name, (column, neg_prefix + iid_field))

    def add_histories(self, histories: Mapping[str, HistoryColumn], length_field: str) -> None:
        """Make the history lists of sequential data joinable: ``join("item_id_list", batch)`` gathers each row's
        window [B, width] from the batch's ``HISTORY_END`` and ``length_field`` columns."""
        for name, column in histories.items():
            self.sources[name] = (column, HISTORY_END)
        self.length_field = length_field
        self._history_values: dict[str, torch.Tensor] = {}

    def _history(self, name: str, column: HistoryColumn, columns: Mapping[str, torch.Tensor]) -> torch.Tensor:
        values = self._history_values.get(name)
        if values is None:
            values = self._history_values[name] = torch.from_numpy(np.ascontiguousarray(column.values))
        ends = columns[HISTORY_END].cpu()
        lengths = columns[self.length_field].cpu().clamp(max=column.width)
        offsets = torch.arange(column.width)
        inside = offsets.unsqueeze(0) < lengths.unsqueeze(1)
        positions = torch.where(inside, (ends + column.offset - lengths).unsqueeze(1) + offsets, 0)
        out = values[positions]
        out[~inside] = 0
        return out.float() if out.is_floating_point() else out

    def names(self, columns: Mapping[str, Any]) -> list[str]:
        """The features joinable for ``columns`` (those whose id column is present)."""
        return [name for name, (_, ids) in self.sources.items() if ids in columns and name not in columns]

    def join(self, name: str, columns: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        source = self.sources.get(name)
        if source is None or source[1] not in columns:
            return None
        column, id_field = source
        ids = columns[id_field]
        if isinstance(column, HistoryColumn):
            return self._history(name, column, columns).to(ids.device)
        flat = ids.reshape(-1).cpu().numpy()
        values = column.take(flat).padded() if isinstance(column, SeqColumn) else np.asarray(column)[flat]
        tensor = torch.from_numpy(np.ascontiguousarray(values))
        if tensor.is_floating_point():
            tensor = tensor.float()
        return tensor.reshape(*ids.shape, *tensor.shape[1:]).to(ids.device)


class Interaction(Mapping):
    """A batch of columns (RecBole's ``Interaction``): ``batch["user_id"]`` is a tensor of shape [B, ...].

    Indexing with an int, slice or index tensor selects rows and returns a new Interaction. ``share`` is, with
    several processes, this rank's slice of the global batch (see ``loaders.rank_slices``); ``features`` joins the
    user / item features on first read (see the module docstring)."""

    __slots__ = ("_data", "_features", "share")

    def __init__(
        self, data: Mapping[str, torch.Tensor], share: float = 1.0, features: BatchFeatures | None = None
    ) -> None:
        self._data = dict(data)
        self.share = share
        self._features = features

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            value = self._data.get(key)
            if value is None and self._features is not None:
                value = self._features.join(key, self._data)
                if value is not None:
                    self._data[key] = value
            if value is None:
                raise KeyError(key)
            return value
        return Interaction({k: v[key] for k, v in self._data.items()}, features=self._features)

    def __setitem__(self, key: str, value: torch.Tensor) -> None:
        self._data[key] = value

    def __contains__(self, key: object) -> bool:
        if key in self._data:
            return True
        return self._features is not None and isinstance(key, str) and key in self._features.names(self._data)

    def __iter__(self) -> Iterator[str]:
        return iter(self.columns)

    def __len__(self) -> int:
        """The batch size (first dimension of the columns)."""
        for value in self._data.values():
            return int(value.shape[0])
        return 0

    @property
    def columns(self) -> list[str]:
        """The columns: those loaded and the joinable features."""
        joinable = self._features.names(self._data) if self._features is not None else []
        return [*self._data, *joinable]

    @property
    def length(self) -> int:
        """The batch size (RecBole's attribute)."""
        return len(self)

    def loaded(self) -> dict[str, torch.Tensor]:
        """The columns the loader put in (and features already joined), without joining more."""
        return dict(self._data)

    def numpy(self) -> dict[str, np.ndarray]:
        """``{column: array}`` of every column (RecBole's ``Interaction.numpy``)."""
        return {name: self[name].cpu().numpy() for name in self.columns}

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Interaction:
        """A copy with every tensor on ``device`` (features joined later land there too)."""
        data = {k: v.to(device, non_blocking=non_blocking) for k, v in self._data.items()}
        return Interaction(data, self.share, self._features)

    def update(self, other: Mapping[str, torch.Tensor]) -> None:
        self._data.update(other.loaded() if isinstance(other, Interaction) else other)

    def __repr__(self) -> str:
        cols = ", ".join(f"{k}: {tuple(v.shape)} {str(v.dtype).replace('torch.', '')}" for k, v in self._data.items())
        return f"Interaction({cols})"
