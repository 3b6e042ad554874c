"""The per-epoch series of one run's history: losses (total, per objective, per part), validation metrics,
learning rates per optimizer, seconds per epoch.

Each series has a key, ``<kind>:<name>`` with kind one of ``loss``, ``valid``, ``lr``, ``seconds``:

- ``loss:total`` the epoch's loss (the sum of the objectives' losses); ``loss:<objective>`` each objective's
  loss when there are several; ``loss:<objective>[i]`` part ``i`` (from 1) of an objective's loss with parts;
- ``valid:<metric>`` every metric of the validation result (``metric@k`` as the run logged it);
- ``lr:<optimizer>`` the learning rate at the start of the epoch;
- ``seconds:train`` and ``seconds:valid``.

A value that is missing (an objective not due in an epoch, an epoch without validation) or not finite is not a
point.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

KINDS = ("loss", "valid", "lr", "seconds")
TITLES = {"loss": "training loss", "valid": "validation", "lr": "learning rate", "seconds": "seconds per epoch"}


@dataclass(frozen=True)
class Series:
    """One quantity over the epochs: ``points`` are ``(epoch, value)`` in epoch order, finite values only;
    ``dropped`` counts the non-finite values left out."""

    key: str
    points: tuple[tuple[int, float], ...]
    dropped: int = 0

    @property
    def kind(self) -> str:
        return self.key.split(":", 1)[0]

    @property
    def name(self) -> str:
        return self.key.split(":", 1)[1]

    def value_at(self, epoch: int) -> float | None:
        return next((v for e, v in self.points if e == epoch), None)


def finite(value: Any) -> bool:
    """Whether ``value`` is a number that can be drawn (not None, a bool, NaN or infinite)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def run_series(history: Iterable[Mapping[str, Any]]) -> dict[str, Series]:
    """Every series of a history (its records as history.jsonl holds them), by key, in the order of ``KINDS``
    and, within a kind, of first appearance."""
    values: dict[str, list[tuple[int, Any]]] = {}

    def add(key: str, epoch: int, value: Any) -> None:
        values.setdefault(key, []).append((epoch, value))

    records = list(history)
    several = len({name for r in records for name in (r.get("losses") or {})}) > 1
    for record in records:
        epoch = record["epoch"]
        if "loss" in record:
            add("loss:total", epoch, record["loss"])
        for objective, loss in (record.get("losses") or {}).items():
            if several:
                add(f"loss:{objective}", epoch, _sum(loss) if isinstance(loss, list) else loss)
            for i, part in enumerate(loss if isinstance(loss, list) else [], start=1):
                add(f"loss:{objective}[{i}]", epoch, part)
        for metric, value in (record.get("valid_result") or {}).items():
            add(f"valid:{metric}", epoch, value)
        for optimizer, lr in (record.get("lr") or {}).items():
            add(f"lr:{optimizer}", epoch, lr)
        for kind in ("train", "valid"):
            if f"{kind}_seconds" in record:
                add(f"seconds:{kind}", epoch, record[f"{kind}_seconds"])
    series = {}
    for key, pairs in values.items():
        kept = tuple((int(e), float(v)) for e, v in sorted(pairs, key=lambda p: p[0]) if finite(v))
        missing = sum(1 for _, v in pairs if v is not None and not finite(v))
        if kept or missing:
            series[key] = Series(key, kept, missing)
    return dict(sorted(series.items(), key=lambda item: KINDS.index(item[1].kind)))


def _sum(parts: list[Any]) -> float | None:
    return sum(parts) if all(finite(p) for p in parts) else None


def label(key: str) -> str:
    """A readable name of a series key: "loss: rec, part 2", "valid: recall@10", "lr: main"."""
    kind, name = key.split(":", 1)
    if kind == "loss" and name.endswith("]") and "[" in name:
        objective, part = name[:-1].rsplit("[", 1)
        return f"loss: {objective}, part {part}"
    return f"{kind}: {name}"


def title(kind: str, name: str = "") -> str:
    """The title of a chart of ``kind`` about ``name``, the same in a run's report and in a comparison:
    "training loss", "training loss: rec, part 2", "validation: recall@10", "learning rate", "learning rate: kg",
    "seconds per epoch: train" (no name, or "total" / "main": the kind's title alone)."""
    if kind == "loss" and name.endswith("]") and "[" in name:
        objective, part = name[:-1].rsplit("[", 1)
        name = f"{objective}, part {part}"
    return TITLES[kind] if name in ("", "total", "main") else f"{TITLES[kind]}: {name}"


def y_label(kind: str, name: str = "") -> str:
    """The y axis label of a chart of ``kind``: "loss", the metric ("recall@10", "recall@k" for a family), "learning
    rate", "seconds"."""
    return {"loss": "loss", "lr": "learning rate", "seconds": "seconds"}.get(kind) or name or "value"
