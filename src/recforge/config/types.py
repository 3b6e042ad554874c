"""Value types of config keys: each one parses and checks a value, or raises ConfigError naming the key.

Values arrive as Python objects (from YAML files or dicts) or as strings (from the command line).
Every type accepts both: ``Float().parse("1e-3", "learning_rate") == 0.001`` (YAML 1.1 itself would
read ``1e-3`` as a string).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import yaml

from recforge.errors import ConfigError, did_you_mean
from recforge.utils.yaml_text import DuplicateKeyError, describe_yaml_error, load_yaml

_NONE_WORDS = {"", "~", "none", "null"}


def is_none(value: Any) -> bool:
    """Whether ``value`` means none: ``None``, or a string ``~``, ``none``, ``None``, ``null`` or empty."""
    return value is None or (isinstance(value, str) and value.strip().lower() in _NONE_WORDS)


def parse_text(text: str, key: str = "") -> Any:
    """Read a command-line string as a YAML value (``"[10, 20]"`` -> ``[10, 20]``), falling back to the text; a
    mapping with a key written twice is a ConfigError naming ``key``."""
    try:
        return load_yaml(text)
    except DuplicateKeyError as exc:
        raise ConfigError(f"config key '{key}': {describe_yaml_error(exc)[1]}") from None
    except yaml.YAMLError:
        return text


class ValueType:
    """Base of all value types. ``parse(value, key)`` returns the checked value."""

    def parse(self, value: Any, key: str) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def _fail(self, value: Any, key: str, extra: str = "") -> ConfigError:
        return ConfigError(f"config key '{key}': {value!r} is not {self.describe()}{extra}")


@dataclass(frozen=True)
class _Bounded(ValueType):
    """A number with optional bounds; subclasses convert the value and name it (``noun``)."""

    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    noun: ClassVar[str] = "a number"

    def _within_bounds(self, value: float, key: str) -> Any:
        too_low = self.minimum is not None and (
            value < self.minimum or (self.exclusive_minimum and value == self.minimum)
        )
        too_high = self.maximum is not None and value > self.maximum
        if too_low or too_high:
            raise self._fail(value, key)
        return value

    def describe(self) -> str:
        bounds = []
        if self.minimum is not None:
            bounds.append(f"{'>' if self.exclusive_minimum else '>='} {self.minimum:g}")
        if self.maximum is not None:
            bounds.append(f"<= {self.maximum:g}")
        return self.noun + (" " + " and ".join(bounds) if bounds else "")


@dataclass(frozen=True)
class Int(_Bounded):
    noun: ClassVar[str] = "an integer"

    def parse(self, value: Any, key: str) -> int:
        if isinstance(value, str):
            value = parse_text(value.strip(), key)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._fail(value, key)
        return self._within_bounds(value, key)


@dataclass(frozen=True)
class Float(_Bounded):
    noun: ClassVar[str] = "a number"

    def parse(self, value: Any, key: str) -> float:
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise self._fail(value, key) from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self._fail(value, key, "" if not isinstance(value, float) else " (a finite number is needed)")
        return self._within_bounds(float(value), key)


@dataclass(frozen=True)
class Bool(ValueType):
    def parse(self, value: Any, key: str) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            word = value.strip().lower()
            if word in {"true", "yes", "on", "1"}:
                return True
            if word in {"false", "no", "off", "0"}:
                return False
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise self._fail(value, key)

    def describe(self) -> str:
        return "true or false"


@dataclass(frozen=True)
class Str(ValueType):
    """A string; with ``choices`` one of them, matched case-insensitively and returned as spelled there."""

    choices: tuple[str, ...] = ()

    def parse(self, value: Any, key: str) -> str:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not self.choices:
            value = str(value)
        if not isinstance(value, str):
            raise self._fail(value, key)
        if self.choices:
            by_lower = {c.lower(): c for c in self.choices}
            if value.lower() not in by_lower:
                raise self._fail(value, key, did_you_mean(value, self.choices))
            return by_lower[value.lower()]
        return value

    def describe(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        return "a string"


@dataclass(frozen=True)
class Optional(ValueType):
    """``None`` (also written ``~``, ``none`` or ``null``) or a value of ``inner``."""

    inner: ValueType

    def parse(self, value: Any, key: str) -> Any:
        if is_none(value):
            return None
        return self.inner.parse(value, key)

    def describe(self) -> str:
        return f"{self.inner.describe()} or none"


@dataclass(frozen=True)
class ListOf(ValueType):
    """A list of ``inner`` values; a single value becomes a one-element list (``topk: 10`` -> ``[10]``)."""

    inner: ValueType
    min_length: int = 0

    def parse(self, value: Any, key: str) -> list:
        if isinstance(value, str):
            value = parse_text(value.strip(), key)
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            value = [value]
        out = [self.inner.parse(v, key) for v in value]
        if len(out) < self.min_length:
            raise self._fail(value, key)
        return out

    def describe(self) -> str:
        suffix = f" with at least {self.min_length} element(s)" if self.min_length else ""
        return f"a list of {self.inner.describe()}{suffix}"


@dataclass(frozen=True)
class Mapping_(ValueType):
    """A free-form mapping; ``values`` checks each value when given."""

    values: ValueType | None = None

    def parse(self, value: Any, key: str) -> dict:
        if isinstance(value, str):
            value = parse_text(value.strip(), key)
        if not isinstance(value, Mapping):
            raise self._fail(value, key)
        if self.values is None:
            return dict(value)
        return {str(k): self.values.parse(v, f"{key}.{k}") for k, v in value.items()}

    def describe(self) -> str:
        return "a mapping" + (f" of {self.values.describe()}" if self.values else "")


@dataclass(frozen=True)
class Struct(ValueType):
    """A mapping with known fields, each with its own type and default.

    A partial mapping is completed from ``defaults`` (RecBole fills missing ``eval_args`` entries the same
    way); an unknown field is an error that names the closest known one. ``normalize`` may rewrite the
    parsed mapping (for example expand a shorthand) and raise ConfigError.
    """

    fields: Mapping[str, ValueType]
    defaults: Mapping[str, Any]
    normalize: Callable[[dict, str], dict] | None = field(default=None, compare=False)

    def parse(self, value: Any, key: str) -> dict:
        if isinstance(value, str):
            value = parse_text(value.strip(), key)
        if not isinstance(value, Mapping):
            raise self._fail(value, key)
        out = dict(self.defaults)
        for name, raw in value.items():
            name = str(name)
            if name not in self.fields:
                raise ConfigError(
                    f"config key '{key}' has no field '{name}'{did_you_mean(name, self.fields)}; "
                    f"its fields are: {', '.join(self.fields)}"
                )
            out[name] = self.fields[name].parse(raw, f"{key}.{name}")
        return self.normalize(out, key) if self.normalize else out

    def describe(self) -> str:
        return "a mapping with fields " + ", ".join(self.fields)


@dataclass(frozen=True)
class Anything(ValueType):
    """Any YAML value, unchecked (for keys whose meaning a model defines)."""

    def parse(self, value: Any, key: str) -> Any:
        if isinstance(value, str):
            return parse_text(value.strip(), key) if value.strip() else value
        return value

    def describe(self) -> str:
        return "any value"


@dataclass(frozen=True)
class Key:
    """One config key: its type, default and a one-line meaning (used in errors and docs)."""

    name: str
    type: ValueType
    default: Any
    doc: str
    group: str = "general"
