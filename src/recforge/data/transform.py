"""Batch transforms of sequential data (RecBole's ``recbole.data.transform``), vectorised and seeded.

``construct_transform(config)`` gives the transform ``config["transform"]`` names (None: ``Equal``). A transform is
called as ``transform(dataset, interaction, generator=None)`` on a batch (an ``Interaction``, or a table such as
``dataset.inter_feat``), adds its columns to it and returns it. Its random draws come from ``generator`` (the
loader's, so a resumed run draws what the uninterrupted one drew) or, called without one, from its own generator
seeded by ``config["seed"]``. The columns are RecBole's:

- ``mask_itemseq`` (BERT4Rec's cloze): ``Mask_item_id_list`` (masked positions hold the mask id ``n_items``),
  ``Pos_item_id`` / ``Neg_item_id`` / ``MASK_INDEX`` [B, int(mask_ratio x MAX_ITEM_LIST_LENGTH)] (the masked items,
  one sampled item not in the row per masked item, their positions; right-aligned, padded with 0 on the left, the
  last ones kept). With probability ``ft_ratio`` a batch masks only each row's last item instead.
- ``inverse_itemseq`` (SHAN): ``Inverse_item_id_list``, each history right-aligned.
- ``crop_itemseq``: ``Crop_item_id_list`` (a random window of floor(length x eta) items, left-aligned) and its
  length ``Crop_item_id_listitem_length``.
- ``reorder_itemseq``: ``Reorder_item_id_list``, a random window of floor(length x beta) items shuffled.
- ``user_defined``: a subclass point; unchanged batches (RecBole's returns None).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from recforge.config.keys import TRANSFORMS


def _tensor(column: Any) -> torch.Tensor:
    """A batch column as a tensor (a table's history / array columns are read dense)."""
    if isinstance(column, torch.Tensor):
        return column
    return torch.as_tensor(np.asarray(column.numpy() if hasattr(column, "numpy") else column))


class Equal:
    """No transform: the batch as it is."""

    applies_in_eval = True

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.generator = torch.Generator().manual_seed(int(config.get("seed") or 0))

    def draw(self, generator: torch.Generator | None) -> torch.Generator:
        return generator if generator is not None else self.generator

    def __call__(self, dataset: Any, interaction: Any, generator: torch.Generator | None = None) -> Any:
        return interaction


class _SequenceTransform(Equal):
    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.ITEM_ID = config["ITEM_ID_FIELD"]
        self.ITEM_SEQ = self.ITEM_ID + config["LIST_SUFFIX"]
        self.ITEM_SEQ_LEN = config["ITEM_LIST_LENGTH_FIELD"]

    def _read(self, interaction: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's item lists [B, L] and lengths [B]."""
        return _tensor(interaction[self.ITEM_SEQ]).long(), _tensor(interaction[self.ITEM_SEQ_LEN]).long()


def _right_aligned(values: torch.Tensor, chosen: torch.Tensor, width: int) -> torch.Tensor:
    """Per row, the ``values`` where ``chosen`` [B, L], in order, right-aligned in [B, width] (0 on the left; the
    last ``width`` kept): RecBole's left-padding and truncation of its per-row lists."""
    count = chosen.sum(dim=1, keepdim=True)
    column = width - count + chosen.long().cumsum(dim=1) - 1
    keep = chosen & (column >= 0)
    out = torch.zeros((len(values), width), dtype=values.dtype)
    rows = torch.arange(len(values)).unsqueeze(1).expand_as(values)
    out[rows[keep], column[keep]] = values[keep]
    return out


def _items_not_in_rows(rows: torch.Tensor, count: torch.Tensor, n_items: int, generator: torch.Generator):
    """For each row index in ``count`` [K] (rows of ``rows`` [B, L]), an item in [1, n_items) not in that row."""
    items = torch.randint(1, n_items, (len(count),), generator=generator)
    redo = torch.nonzero((rows[count] == items.unsqueeze(1)).any(dim=1)).flatten()
    while len(redo):
        items[redo] = torch.randint(1, n_items, (len(redo),), generator=generator)
        redo = redo[(rows[count[redo]] == items[redo].unsqueeze(1)).any(dim=1)]
    return items


class MaskItemSequence(_SequenceTransform):
    """BERT4Rec's cloze masking (see the module docstring). ``n_items`` (the mask id) is ``dataset.num(ITEM_ID)``."""

    applies_in_eval = False  # the model's predictions append their own mask

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.MASK_ITEM_SEQ = "Mask_" + self.ITEM_SEQ
        self.POS_ITEMS = "Pos_" + self.ITEM_ID
        self.NEG_ITEMS = "Neg_" + self.ITEM_ID
        self.MASK_INDEX = "MASK_INDEX"
        self.max_seq_length = config["MAX_ITEM_LIST_LENGTH"]
        self.mask_ratio = config["mask_ratio"]
        self.ft_ratio = config.get("ft_ratio") or 0
        self.mask_item_length = int(self.mask_ratio * self.max_seq_length)

    def __call__(self, dataset: Any, interaction: Any, generator: torch.Generator | None = None) -> Any:
        generator = self.draw(generator)
        items, lengths = self._read(interaction)
        n_items = dataset.num(self.ITEM_ID)
        if float(torch.rand(1, generator=generator)) < self.ft_ratio:
            chosen = torch.zeros_like(items, dtype=torch.bool)
            rows = torch.nonzero(lengths > 0).flatten()
            chosen[rows, lengths[rows] - 1] = True
        else:
            present = torch.cumprod(items != 0, dim=1).bool()  # RecBole stops at a row's first 0
            chosen = present & (torch.rand(items.shape, generator=generator) < self.mask_ratio)
        rows, positions = torch.nonzero(chosen, as_tuple=True)
        negatives = torch.zeros_like(items)
        negatives[rows, positions] = _items_not_in_rows(items, rows, n_items, generator)
        width = self.mask_item_length
        interaction.update(
            {
                self.MASK_ITEM_SEQ: torch.where(chosen, n_items, items),
                self.POS_ITEMS: _right_aligned(items, chosen, width),
                self.NEG_ITEMS: _right_aligned(negatives, chosen, width),
                self.MASK_INDEX: _right_aligned(torch.arange(items.shape[1]).expand_as(items), chosen, width),
            }
        )
        return interaction


class InverseItemSequence(_SequenceTransform):
    """SHAN's input: each history right-aligned (``[1, 2, 3, 0, 0] -> [0, 0, 1, 2, 3]``)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.INVERSE_ITEM_SEQ = "Inverse_" + self.ITEM_SEQ

    def __call__(self, dataset: Any, interaction: Any, generator: torch.Generator | None = None) -> Any:
        items, lengths = self._read(interaction)
        width = items.shape[1]
        source = torch.arange(width).unsqueeze(0) - (width - lengths).unsqueeze(1)
        inside = source >= 0
        inverse = torch.where(inside, items.gather(1, source.clamp(min=0)), 0)
        interaction.update({self.INVERSE_ITEM_SEQ: inverse})
        return interaction


def _windows(lengths: torch.Tensor, ratio: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row a window of floor(length x ratio) items (float32, as RecBole's tensors) at a uniform start in
    [0, length - size]: ``(start, size)``."""
    size = torch.floor(lengths.float() * ratio).long()
    start = torch.floor(torch.rand(len(lengths), generator=generator, dtype=torch.float64) * (lengths - size + 1))
    return start.long(), size


class CropItemSequence(_SequenceTransform):
    """A random window of each history, moved to the front (``eta``: the window's share of the history)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.CROP_ITEM_SEQ = "Crop_" + self.ITEM_SEQ
        self.CROP_ITEM_SEQ_LEN = self.CROP_ITEM_SEQ + self.ITEM_SEQ_LEN
        self.crop_eta = config["eta"]

    def __call__(self, dataset: Any, interaction: Any, generator: torch.Generator | None = None) -> Any:
        items, lengths = self._read(interaction)
        start, size = _windows(lengths, self.crop_eta, self.draw(generator))
        offsets = torch.arange(items.shape[1]).unsqueeze(0)
        inside = offsets < size.unsqueeze(1)
        source = (start.unsqueeze(1) + offsets).clamp(max=items.shape[1] - 1)
        cropped = torch.where(inside, items.gather(1, source), 0)
        interaction.update({self.CROP_ITEM_SEQ: cropped, self.CROP_ITEM_SEQ_LEN: size})
        return interaction


class ReorderItemSequence(_SequenceTransform):
    """A random window of each history shuffled in place (``beta``: the window's share of the history)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.REORDER_ITEM_SEQ = "Reorder_" + self.ITEM_SEQ
        self.reorder_beta = config["beta"]

    def __call__(self, dataset: Any, interaction: Any, generator: torch.Generator | None = None) -> Any:
        generator = self.draw(generator)
        items, lengths = self._read(interaction)
        start, size = _windows(lengths, self.reorder_beta, generator)
        positions = torch.arange(items.shape[1], dtype=torch.float64).expand(items.shape)
        inside = (positions >= start.unsqueeze(1)) & (positions < (start + size).unsqueeze(1))
        # keys: a position outside the window keeps its place, the window's keys are random within it
        noise = torch.rand(items.shape, generator=generator, dtype=torch.float64)
        keys = torch.where(inside, start.unsqueeze(1) + noise * size.unsqueeze(1), positions)
        interaction.update({self.REORDER_ITEM_SEQ: items.gather(1, torch.argsort(keys, dim=1))})
        return interaction


class UserDefinedTransform(Equal):
    """Subclass and override ``__call__`` for a transform of your own; as it is, batches pass unchanged."""


TRANSFORM_CLASSES = {
    "mask_itemseq": MaskItemSequence,
    "inverse_itemseq": InverseItemSequence,
    "crop_itemseq": CropItemSequence,
    "reorder_itemseq": ReorderItemSequence,
    "user_defined": UserDefinedTransform,
}


def construct_transform(config: Mapping[str, Any]) -> Equal:
    """The transform ``config["transform"]`` names (RecBole's function); ``Equal`` for None."""
    name = config.get("transform")
    if name is None:
        return Equal(config)
    if name not in TRANSFORM_CLASSES:
        from recforge.errors import ConfigError

        raise ConfigError(f"config key 'transform': unknown transform {name!r}; choose one of {', '.join(TRANSFORMS)}")
    return TRANSFORM_CLASSES[name](config)
