"""Search spaces: which config keys a study searches, over which values, read from YAML or RecBole's hyper.test.

YAML (one entry per config key)::

    learning_rate: {type: loguniform, low: 1e-4, high: 1e-1}   # values between low and high, log scale
    embedding_size: {type: choice, values: [32, 64]}           # or just: embedding_size: [32, 64]
    reg_weight: {type: uniform, low: 0, high: 1}
    n_layers: {type: int, low: 1, high: 4}                     # optional step (default 1) and log (false)
    train_batch_size: {type: quniform, low: 512, high: 4096, q: 512}

RecBole's hyper.test (one ``key type value`` line per key, the value's spaces removed as RecBole does)::

    learning_rate loguniform -8,0
    embedding_size choice [64,96,128]
    reg_weight uniform 0,1
    train_batch_size quniform 512,4096,512

where loguniform's bounds are exponents of e (exp(-8) .. exp(0), hyperopt's rule), choice takes a Python literal
list, and quniform gives round(x / q) * q for x uniform in [low, high] (integers when low and q are).

A file whose first entry line is ``key type value`` (no colon after the key) is read as hyper.test, any other as
YAML; ``#`` starts a comment line in both. Every malformed entry is a ``SearchSpaceError`` naming the entry (the
key, and in hyper.test the line); ``check_keys`` rejects keys the run's config does not read.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from recforge.errors import ConfigError, did_you_mean
from recforge.registry import declared_keys

TYPES = ("choice", "uniform", "loguniform", "quniform", "int")
FIELDS = {
    "choice": ({"values"}, set()),
    "uniform": ({"low", "high"}, set()),
    "loguniform": ({"low", "high"}, set()),
    "quniform": ({"low", "high", "q"}, set()),
    "int": ({"low", "high"}, {"step", "log"}),
}
# Keys a study cannot search: the model and data set define the study; the study places the trials' run folders.
NOT_SEARCHABLE = {
    "model": "the model defines the study; start one study per model",
    "dataset": "the data set defines the study; start one study per data set",
    "checkpoint_dir": "the study puts every trial's run folder in <study dir>/trials",
}
_HYPER_LINE = re.compile(r"^[^\s:#]+\s+[^\s:]")  # "key type ...": no colon after the key


class SearchSpaceError(ConfigError):
    """A search space entry is malformed or names a key the run does not read."""


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

    def grid(self) -> list[Any] | None:
        """Every value this key can take (Optuna's form), or None when it is continuous."""
        if self.kind == "choice":
            return list(self.values)
        if self.kind == "int":
            return list(range(int(self.low), int(self.high) + 1, int(self.step)))
        if self.kind == "quniform":
            low, high = self._q_bounds()
            count = round((high - low) / self.step) + 1
            if _integral(self.step) and _integral(low):
                return [int(low) + i * int(self.step) for i in range(count)]
            return [low + i * self.step for i in range(count)]
        return None

    def _q_bounds(self) -> tuple[float, float]:
        """quniform's values are the multiples of q that round(x / q) * q reaches for x in [low, high]."""
        return round(self.low / self.step) * self.step, round(self.high / self.step) * self.step


def _integral(value: float) -> bool:
    return float(value).is_integer()


class SearchSpace(Mapping):
    """The searched keys, in the order given: ``{name: Param}``. ``source`` names where it came from."""

    def __init__(self, params: Mapping[str, Param], source: str) -> None:
        self.params = dict(params)
        self.source = source

    def __getitem__(self, name: str) -> Param:
        return self.params[name]

    def __iter__(self):
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def error(self, name: str | None, problem: str, line: int | None = None) -> SearchSpaceError:
        """A SearchSpaceError that names the space, the line (hyper.test) and the key."""
        line = line if line is not None else (self.params[name].line if name in self.params else None)
        where = f"search space {self.source}" + (f", line {line}" if line is not None else "")
        return SearchSpaceError(f"{where}: " + (f"'{name}': {problem}" if name is not None else problem))

    def suggest(self, trial: Any) -> dict[str, Any]:
        """One value per key from an Optuna trial."""
        return {name: param.suggest(trial) for name, param in self.params.items()}

    def grid(self) -> dict[str, list[Any]]:
        """The grid for Optuna's GridSampler; a SearchSpaceError for a continuous key."""
        grid = {}
        for name, param in self.params.items():
            values = param.grid()
            if values is None:
                raise self.error(
                    name,
                    f"the grid sampler needs discrete values, not {param.kind}; use choice, int "
                    "or quniform, or another sampler",
                )
            grid[name] = values
        return grid

    def check_keys(self, config: Any) -> None:
        """Reject keys that ``config`` (the study's resolved Config, without the searched values) does not read, and
        keys a study cannot search."""
        free = declared_keys(config.model_class) is None
        for name in self.params:
            if name in NOT_SEARCHABLE:
                raise self.error(name, f"cannot be searched: {NOT_SEARCHABLE[name]}")
            if name in config and name not in ("MODEL_TYPE", "MODEL_INPUT_TYPE", "single_spec"):
                continue
            if free and not did_you_mean(name, config, cutoff=0.9):
                continue  # a model that declares no keys reads free keys, as in RecBole
            hint = did_you_mean(name, config, cutoff=0.8)
            raise self.error(name, f"not a config key of {config['model']}{hint}")


def read_space(space: str | Path | Mapping[str, Any] | SearchSpace) -> SearchSpace:
    """A SearchSpace from a file (YAML or hyper.test, told apart by content) or a YAML-style mapping."""
    if isinstance(space, SearchSpace):
        return space
    if isinstance(space, Mapping):
        return parse_yaml_space(space, "(dict)")
    path = Path(space)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SearchSpaceError(f"search space {path}: cannot be read ({exc.strerror or exc})") from None
    first = next((s for s in (line.strip() for line in text.splitlines()) if s and not s.startswith("#")), "")
    if _HYPER_LINE.match(first):
        return parse_hyper_test(text, str(path))
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark else ""
        raise SearchSpaceError(f"search space {path}{where}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, Mapping):
        raise SearchSpaceError(
            f"search space {path}: expected a mapping of config key -> {{type: ..., ...}} (YAML) or lines of "
            "'key type value' (RecBole's hyper.test)"
        )
    return parse_yaml_space(data, str(path))


def parse_yaml_space(data: Mapping[str, Any], source: str) -> SearchSpace:
    """The YAML form: ``{key: {type: T, <T's fields>}}``, or ``{key: [v1, v2]}`` for a choice."""
    space = SearchSpace({}, source)
    if not data:
        raise space.error(None, "no keys to search")
    for name, entry in data.items():
        name = str(name)
        if isinstance(entry, (list, tuple)):
            entry = {"type": "choice", "values": list(entry)}
        if not isinstance(entry, Mapping) or "type" not in entry:
            raise space.error(name, f"expected {{type: <{'|'.join(TYPES)}>, ...}} or a list of values, not {entry!r}")
        kind = str(entry["type"])
        if kind not in FIELDS:
            raise space.error(name, f"unknown type '{kind}'{did_you_mean(kind, TYPES)}; use one of {', '.join(TYPES)}")
        required, optional = FIELDS[kind]
        given = set(map(str, entry)) - {"type"}
        unknown, missing = sorted(given - required - optional), sorted(required - given)
        if unknown:
            hint = did_you_mean(unknown[0], required | optional)
            raise space.error(name, f"unknown field '{unknown[0]}' for {kind}{hint}")
        if missing:
            raise space.error(name, f"{kind} needs '{missing[0]}'")
        fields = {str(k): v for k, v in entry.items() if k != "type"}
        space.params[name] = _build(space, name, kind, fields, None)
    return space


def parse_hyper_test(text: str, source: str) -> SearchSpace:
    """RecBole's hyper.test: ``key type value`` per line; loguniform bounds are exponents of e."""
    space = SearchSpace({}, source)
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split()
        if len(words) < 3:
            raise space.error(None, f"expected 'key type value', not {line!r}", number)
        name, kind, value = words[0], words[1], "".join(words[2:])
        if name in space.params:
            raise space.error(name, f"already defined on line {space.params[name].line}", number)
        if kind not in ("choice", "uniform", "loguniform", "quniform"):
            known = ", ".join(TYPES[:4])
            raise space.error(name, f"unknown type '{kind}'{did_you_mean(kind, TYPES)}; use one of {known}", number)
        if kind == "choice":
            try:
                values = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                raise space.error(
                    name, f"choice needs a Python literal list such as [1,2], not {value!r}", number
                ) from None
            fields = {"values": values}
        else:
            names = ("low", "high", "q") if kind == "quniform" else ("low", "high")
            parts = value.split(",")
            if len(parts) != len(names):
                raise space.error(name, f"{kind} needs '{','.join(names)}', not {value!r}", number)
            fields = dict(zip(names, parts, strict=True))
        space.params[name] = _build(space, name, kind, fields, number, exponents=kind == "loguniform")
    if not space.params:
        raise space.error(None, "no keys to search")
    return space


def _number(space: SearchSpace, name: str, field: str, value: Any, line: int | None) -> float:
    """A finite number (YAML 1.1 reads 1e-4 as text, so text is converted too)."""
    if not isinstance(value, bool):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if math.isfinite(number):
            return number
    raise space.error(name, f"{field} must be a finite number, not {value!r}", line)


def _build(
    space: SearchSpace, name: str, kind: str, fields: Mapping[str, Any], line: int | None, exponents: bool = False
) -> Param:
    if kind == "choice":
        values = fields["values"]
        if not isinstance(values, (list, tuple)) or not values:
            raise space.error(name, f"choice needs a non-empty list of values, not {values!r}", line)
        plain = all(v is None or isinstance(v, (bool, int, float, str)) for v in values)
        encoded = tuple(values) if plain else tuple(json.dumps(v) for v in values)
        if len(set(map(repr, encoded))) < len(encoded):
            raise space.error(name, f"choice lists a value twice: {list(values)!r}", line)
        return Param(name, kind, values=encoded, line=line, encoded=not plain)
    low, high = (_number(space, name, f, fields[f], line) for f in ("low", "high"))
    if exponents:
        low, high = math.exp(low), math.exp(high)
    if kind in ("uniform", "loguniform") and not low < high:
        raise space.error(name, f"low {low:g} must be below high {high:g}", line)
    if kind == "loguniform" and low <= 0:
        raise space.error(name, f"loguniform needs low > 0, not {low:g}", line)
    if kind == "quniform":
        q = _number(space, name, "q", fields["q"], line)
        if q <= 0 or low > high:
            raise space.error(
                name, f"quniform needs q > 0 and low <= high, not low {low:g}, high {high:g}, q {q:g}", line
            )
        return Param(name, kind, low=low, high=high, step=q, line=line)
    if kind == "int":
        step = _number(space, name, "step", fields.get("step", 1), line)
        log = fields.get("log", False)
        for field, value in (("low", low), ("high", high), ("step", step)):
            if not _integral(value):
                raise space.error(name, f"int needs an integer {field}, not {value:g}", line)
        if not isinstance(log, bool):
            raise space.error(name, f"log must be true or false, not {log!r}", line)
        if low > high or step < 1 or (log and (low < 1 or step != 1)):
            raise space.error(
                name,
                f"int needs low <= high and step >= 1 (with log: low >= 1, step 1), not low {low:g}, high {high:g}, "
                f"step {step:g}",
                line,
            )
        return Param(name, kind, low=int(low), high=int(high), step=int(step), log=log, line=line)
    return Param(name, kind, low=low, high=high, line=line)
