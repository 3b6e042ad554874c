"""RecBole's interval strings: ``"[5,inf)"``, ``"(0,10]"``, several joined by ``;`` (a value passes if it lies in
any of them). Malformed strings are errors here, where RecBole only logs a warning and ignores them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from recforge.errors import ConfigError

SYNTAX = "'[low,high]' with [ or ( and ] or ), low and high numbers or inf, several joined by ';' (e.g. '[5,inf)')"


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    low_closed: bool
    high_closed: bool

    def contains(self, values: np.ndarray) -> np.ndarray:
        """Boolean mask of ``values`` inside the interval (NaN is never inside)."""
        above = values >= self.low if self.low_closed else values > self.low
        below = values <= self.high if self.high_closed else values < self.high
        return above & below


def parse_intervals(text: str | None, key: str) -> list[Interval] | None:
    """Parse an interval string of config key ``key``; None stays None (no filtering)."""
    if text is None:
        return None
    intervals = []
    for part in str(text).split(";"):
        part = part.strip()
        bounds = part[1:-1].split(",") if len(part) >= 2 else []
        if len(part) < 5 or part[0] not in "[(" or part[-1] not in ")]" or len(bounds) != 2:
            raise ConfigError(f"config key '{key}': {part!r} is not an interval; write {SYNTAX}")
        try:
            low, high = (float(b.strip()) for b in bounds)
        except ValueError:
            raise ConfigError(
                f"config key '{key}': {part!r} has a bound that is not a number; write {SYNTAX}"
            ) from None
        if math.isnan(low) or math.isnan(high) or low > high:
            raise ConfigError(f"config key '{key}': {part!r} is empty (low bound above high bound)")
        intervals.append(Interval(low, high, part[0] == "[", part[-1] == "]"))
    return intervals


def within(values: np.ndarray, intervals: list[Interval]) -> np.ndarray:
    """Mask of values inside any of ``intervals``."""
    mask = np.zeros(len(values), dtype=bool)
    for interval in intervals:
        mask |= interval.contains(values)
    return mask
