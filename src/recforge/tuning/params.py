"""One searched key (``Param``) and the checks that turn a search space entry into one (``build``).

Every bound is checked where it is read, so that nothing the sampler or the grid computes later can overflow:
bounds are finite floats, ``high - low`` is finite too, a hyper.test loguniform exponent gives a positive finite
value, and int bounds and quniform's ``low / q`` and ``high / q`` lie within +-2**53, the integers a float (and so
Optuna's samplers, which compute in floats) holds exactly. Messages show a value of any length in at most
``SHOWN`` characters.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from recforge.errors import ConfigError

if TYPE_CHECKING:
    from recforge.tuning.space import SearchSpace

TYPES = ("choice", "uniform", "loguniform", "quniform", "int")
FIELDS = {
    "choice": ({"values"}, set()),
    "uniform": ({"low", "high"}, set()),
    "loguniform": ({"low", "high"}, set()),
    "quniform": ({"low", "high", "q"}, set()),
    "int": ({"low", "high"}, {"step", "log"}),
}
EXACT = 2**53  # every integer up to this is a float exactly
SHOWN = 80


class SearchSpaceError(ConfigError):
    """A search space entry is malformed or names a key the run does not read."""


def clip(text: str, limit: int = SHOWN) -> str:
    """``text``, or its first ``limit`` characters and its length when it is longer."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def shown(value: Any) -> str:
    """``repr(value)`` as a message shows it (``clip``)."""
    return clip(repr(value))


@dataclass(frozen=True)
class Param:
    """One searched key. ``low`` / ``high`` are the values themselves (a hyper.test loguniform's exponents are
    turned into them); ``step`` is quniform's q or int's step; ``encoded`` marks choice values given to Optuna as
    JSON text (lists, mappings)."""

    name: str
    kind: str
    values: tuple[Any, ...] = ()
    low: float = 0.0
    high: float = 0.0
    step: float = 1.0
    log: bool = False
    line: int | None = None
    encoded: bool = False

    def suggest(self, trial: Any) -> Any:
        """Ask an Optuna trial for this key's value (decoded: the value the config receives)."""
        if self.kind == "choice":
            value = trial.suggest_categorical(self.name, list(self.values))
            return json.loads(value) if self.encoded else value
        if self.kind in ("uniform", "loguniform"):
            return trial.suggest_float(self.name, self.low, self.high, log=self.kind == "loguniform")
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step), log=self.log)
        low, high = self._q_bounds()
        if _integral(self.step) and _integral(low):
            return trial.suggest_int(self.name, int(low), int(high), step=int(self.step))
        return trial.suggest_float(self.name, low, high, step=self.step)

    def grid_size(self) -> int | None:
        """How many values this key can take, or None when it is continuous (counted, not listed)."""
        if self.kind == "choice":
            return len(self.values)
        if self.kind == "int":
            return (int(self.high) - int(self.low)) // int(self.step) + 1
        if self.kind == "quniform":
            low, high = self._q_bounds()
            return round((high - low) / self.step) + 1
        return None

    def grid(self) -> list[Any] | None:
        """Every value this key can take (Optuna's form), or None when it is continuous."""
        if self.kind == "choice":
            return list(self.values)
        if self.kind == "int":
            return list(range(int(self.low), int(self.high) + 1, int(self.step)))
        if self.kind != "quniform":
            return None
        low, count = self._q_bounds()[0], self.grid_size() or 0
        if _integral(self.step) and _integral(low):
            return [int(low) + i * int(self.step) for i in range(count)]
        return [low + i * self.step for i in range(count)]

    def _q_bounds(self) -> tuple[float, float]:
        """quniform's values are the multiples of q that round(x / q) * q reaches for x in [low, high]."""
        return round(self.low / self.step) * self.step, round(self.high / self.step) * self.step


def _integral(value: float) -> bool:
    return float(value).is_integer()


def number(space: SearchSpace, name: str, field: str, value: Any, line: int | None) -> float:
    """A finite number (YAML 1.1 reads 1e-4 as text, so text is converted too)."""
    if not isinstance(value, bool):
        try:
            result = float(value)
        except (TypeError, ValueError, OverflowError):  # OverflowError: an integer beyond the float range
            result = math.nan
        if math.isfinite(result):
            return result
    raise space.error(name, f"{field} must be a finite number, not {shown(value)}", line)


def build(
    space: SearchSpace, name: str, kind: str, fields: Mapping[str, Any], line: int | None, exponents: bool = False
) -> Param:
    """The Param of one entry whose type and field names are known; a SearchSpaceError for a bad value.
    ``exponents``: low and high are exponents of e (hyper.test's loguniform)."""
    if kind == "choice":
        return _choice(space, name, fields["values"], line)
    low, high = (number(space, name, f, fields[f], line) for f in ("low", "high"))
    if exponents:
        low, high = _exp(space, name, "low", low, line), _exp(space, name, "high", high, line)
    if kind in ("uniform", "loguniform") and not low < high:
        raise space.error(name, f"low {low:g} must be below high {high:g}", line)
    if not math.isfinite(high - low):
        raise space.error(name, f"high - low ({high:g} - {low:g}) is beyond the float range; narrow the bounds", line)
    if kind == "loguniform" and low <= 0:
        raise space.error(name, f"loguniform needs low > 0, not {low:g}", line)
    if kind == "quniform":
        return _quniform(space, name, low, high, number(space, name, "q", fields["q"], line), line)
    if kind == "int":
        return _int(space, name, low, high, fields, line)
    return Param(name, kind, low=low, high=high, line=line)


def _exp(space: SearchSpace, name: str, field: str, exponent: float, line: int | None) -> float:
    try:
        value = math.exp(exponent)
    except OverflowError:
        value = math.inf
    if 0 < value < math.inf:
        return value
    beyond = "beyond the float range" if value else "0 in floats"
    raise space.error(
        name,
        f"loguniform {field} exponent {exponent:g} gives exp({exponent:g}), {beyond} (bounds are exponents of e)",
        line,
    )


def _choice(space: SearchSpace, name: str, values: Any, line: int | None) -> Param:
    if not isinstance(values, (list, tuple)) or not values:
        raise space.error(name, f"choice needs a non-empty list of values, not {shown(values)}", line)
    plain = all(v is None or isinstance(v, (bool, int, float, str)) for v in values)
    try:
        encoded = tuple(values) if plain else tuple(json.dumps(v) for v in values)
    except (TypeError, ValueError, RecursionError):  # a date, a set, a structure nested too deeply
        raise space.error(
            name,
            f"choice values must be numbers, text, true/false, null, or lists and mappings of them: {shown(values)}",
            line,
        ) from None
    if len(set(map(repr, encoded))) < len(encoded):
        raise space.error(name, f"choice lists a value twice: {shown(list(values))}", line)
    return Param(name, "choice", values=encoded, line=line, encoded=not plain)


def _quniform(space: SearchSpace, name: str, low: float, high: float, q: float, line: int | None) -> Param:
    if q <= 0 or low > high:
        raise space.error(name, f"quniform needs q > 0 and low <= high, not low {low:g}, high {high:g}, q {q:g}", line)
    if not (abs(low / q) <= EXACT and abs(high / q) <= EXACT):
        raise space.error(
            name, f"quniform needs low / q and high / q within +-2**53, not low {low:g}, high {high:g}, q {q:g}", line
        )
    param = Param(name, "quniform", low=low, high=high, step=q, line=line)
    if not all(map(math.isfinite, param._q_bounds())):
        raise space.error(name, f"quniform's values round(x / q) * q for x up to {high:g} overflow", line)
    return param


def _int(space: SearchSpace, name: str, low: float, high: float, fields: Mapping[str, Any], line: int | None) -> Param:
    step = number(space, name, "step", fields.get("step", 1), line)
    log = fields.get("log", False)
    for field, value in (("low", low), ("high", high), ("step", step)):
        if not _integral(value):
            raise space.error(name, f"int needs an integer {field}, not {value:g}", line)
        if abs(value) > EXACT:
            raise space.error(name, f"int needs {field} within +-2**53 ({EXACT}), not {value:g}", line)
    if not isinstance(log, bool):
        raise space.error(name, f"log must be true or false, not {shown(log)}", line)
    if low > high or step < 1 or (log and (low < 1 or step != 1)):
        raise space.error(
            name,
            f"int needs low <= high and step >= 1 (with log: low >= 1, step 1), not low {low:g}, high {high:g}, "
            f"step {step:g}",
            line,
        )
    return Param(name, "int", low=int(low), high=int(high), step=int(step), log=log, line=line)
