"""Progress bars (tqdm) that cost nothing when switched off."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")


def progress(iterable: Iterable[T], show: bool, description: str) -> Iterable[T]:
    """``iterable`` itself, or wrapped in a tqdm bar when ``show`` (drawn on terminals only)."""
    if not show:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=description, leave=False, dynamic_ncols=True, disable=None)
