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
YAML; ``#`` starts a comment line in both. Files are read as UTF-8, YAML through ``load_yaml`` (a key written
twice is refused). Every malformed entry is a ``SearchSpaceError`` naming the key and its line (a file) and the
problem (see ``recforge.tuning.params`` for the bounds); ``check_keys`` rejects keys the run's config does not read;
``grid`` refuses a grid of more than ``GRID_LIMIT`` points before Optuna lists them.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from recforge.errors import did_you_mean
from recforge.registry import declared_keys
from recforge.tuning.params import FIELDS, TYPES, Param, SearchSpaceError, build, clip, shown
from recforge.utils.files import read_utf8
from recforge.utils.yaml_text import DuplicateKeyError, describe_yaml_error, load_yaml

# Keys a study cannot search: the model and data set define the study; the study places the trials' run folders.
NOT_SEARCHABLE = {
    "model": "the model defines the study; start one study per model",
    "dataset": "the data set defines the study; start one study per data set",
    "checkpoint_dir": "the study puts every trial's run folder in <study dir>/trials",
}
GRID_LIMIT = 1_000_000  # Optuna's GridSampler lists (and shuffles) every point in memory
_HYPER_LINE = re.compile(r"^[^\s:#]+\s+[^\s:]")  # "key type ...": no colon after the key


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
        """A SearchSpaceError that names the space, the line (when known) and the key."""
        line = line if line is not None else (self.params[name].line if name in self.params else None)
        where = f"search space {self.source}" + (f", line {line}" if line is not None else "")
        return SearchSpaceError(f"{where}: " + (f"'{clip(name)}': {problem}" if name is not None else problem))

    def suggest(self, trial: Any) -> dict[str, Any]:
        """One value per key from an Optuna trial."""
        return {name: param.suggest(trial) for name, param in self.params.items()}

    def grid(self) -> dict[str, list[Any]]:
        """The grid for Optuna's GridSampler; a SearchSpaceError for a continuous key or more than ``GRID_LIMIT``
        points (counted before any value is listed)."""
        sizes = {}
        for name, param in self.params.items():
            size = param.grid_size()
            if size is None:
                raise self.error(
                    name,
                    f"the grid sampler needs discrete values, not {param.kind}; use choice, int "
                    "or quniform, or another sampler",
                )
            sizes[name] = size
        points = math.prod(sizes.values())
        if points > GRID_LIMIT:
            counts = " x ".join(f"{size:,} ({clip(name, 40)})" for name, size in sizes.items())
            raise self.error(
                None,
                f"the grid has {points:,} points ({counts}); the grid sampler takes at most {GRID_LIMIT:,}: "
                "search fewer values, or use the tpe or random sampler",
            )
        return {name: param.grid() for name, param in self.params.items()}

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
        text = read_utf8(path, SearchSpaceError, "search space ")
    except OSError as exc:
        raise SearchSpaceError(f"search space {path}: cannot be read ({exc.strerror or exc})") from None
    first = next((s for s in (line.strip() for line in text.splitlines()) if s and not s.startswith("#")), "")
    if _HYPER_LINE.match(first):
        return parse_hyper_test(text, str(path))
    data, lines = _read_yaml(text, path)
    if not isinstance(data, Mapping):
        raise SearchSpaceError(
            f"search space {path}: expected a mapping of config key -> {{type: ..., ...}} (YAML) or lines of "
            "'key type value' (RecBole's hyper.test)"
        )
    return parse_yaml_space(data, str(path), lines)


def _read_yaml(text: str, path: Path) -> tuple[Any, dict[str, int]]:
    """The YAML document and the line of each top-level key."""
    try:
        data = load_yaml(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        where, problem = describe_yaml_error(exc)
        problem = clip(problem, 200) if isinstance(exc, DuplicateKeyError) else f"invalid YAML ({clip(problem, 200)})"
        raise SearchSpaceError(f"search space {path}{where}: {problem}") from None
    except RecursionError:
        raise SearchSpaceError(f"search space {path}: invalid YAML (nested too deeply to be read)") from None
    lines: dict[str, int] = {}
    if isinstance(root, yaml.MappingNode):
        for key, _ in root.value:
            if isinstance(key, yaml.ScalarNode):
                lines.setdefault(key.value, key.start_mark.line + 1)
    return data, lines


def parse_yaml_space(data: Mapping[str, Any], source: str, lines: Mapping[str, int] | None = None) -> SearchSpace:
    """The YAML form: ``{key: {type: T, <T's fields>}}``, or ``{key: [v1, v2]}`` for a choice. ``lines``: the
    line of each key in its file."""
    space = SearchSpace({}, source)
    if not data:
        raise space.error(None, "no keys to search")
    for name, entry in data.items():
        name = str(name)
        line = (lines or {}).get(name)
        if isinstance(entry, (list, tuple)):
            entry = {"type": "choice", "values": list(entry)}
        if not isinstance(entry, Mapping) or "type" not in entry:
            expected = f"expected {{type: <{'|'.join(TYPES)}>, ...}} or a list of values"
            raise space.error(name, f"{expected}, not {shown(entry)}", line)
        kind = str(entry["type"])
        if kind not in FIELDS:
            hint = did_you_mean(kind, TYPES)
            raise space.error(name, f"unknown type '{clip(kind)}'{hint}; use one of {', '.join(TYPES)}", line)
        required, optional = FIELDS[kind]
        given = set(map(str, entry)) - {"type"}
        unknown, missing = sorted(given - required - optional), sorted(required - given)
        if unknown:
            hint = did_you_mean(unknown[0], required | optional)
            raise space.error(name, f"unknown field '{clip(unknown[0])}' for {kind}{hint}", line)
        if missing:
            raise space.error(name, f"{kind} needs '{missing[0]}'", line)
        fields = {str(k): v for k, v in entry.items() if k != "type"}
        space.params[name] = build(space, name, kind, fields, line)
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
            raise space.error(None, f"expected 'key type value', not {shown(line)}", number)
        name, kind, value = words[0], words[1], "".join(words[2:])
        if name in space.params:
            raise space.error(name, f"already defined on line {space.params[name].line}", number)
        if kind not in ("choice", "uniform", "loguniform", "quniform"):
            known = ", ".join(TYPES[:4])
            raise space.error(
                name, f"unknown type '{clip(kind)}'{did_you_mean(kind, TYPES)}; use one of {known}", number
            )
        space.params[name] = build(
            space, name, kind, _hyper_fields(space, name, kind, value, number), number, exponents=kind == "loguniform"
        )
    if not space.params:
        raise space.error(None, "no keys to search")
    return space


def _hyper_fields(space: SearchSpace, name: str, kind: str, value: str, number: int) -> dict[str, Any]:
    """The fields of a hyper.test entry: a choice's literal list, or the comma-separated bounds."""
    if kind == "choice":
        try:
            return {"values": ast.literal_eval(value)}
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            problem = f"choice needs a Python literal list such as [1,2], not {shown(value)}"
            raise space.error(name, problem, number) from None
    names = ("low", "high", "q") if kind == "quniform" else ("low", "high")
    parts = value.split(",")
    if len(parts) != len(names):
        raise space.error(name, f"{kind} needs '{','.join(names)}', not {shown(value)}", number)
    return dict(zip(names, parts, strict=True))
