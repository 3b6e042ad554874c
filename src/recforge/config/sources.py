"""Where config values come from besides code: YAML files and command lines (recforge's, and a script's own
``--key=value`` arguments as RecBole reads them)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from recforge.errors import ConfigError
from recforge.utils.files import read_utf8
from recforge.utils.yaml_text import DuplicateKeyError, describe_yaml_error, load_yaml


def parse_command_line(argv: Iterable[str]) -> dict[str, str]:
    """Turn ``["--epochs=5", "--learner", "sgd", "--flag"]`` into ``{"epochs": "5", "learner": "sgd", "flag": "true"}``.

    Values stay strings; each key's type parses them later. A token that is not ``--key`` is an error.
    """
    out: dict[str, str] = {}
    args = list(argv)
    i = 0
    while i < len(args):
        token = args[i]
        if not token.startswith("--") or len(token) == 2:
            raise ConfigError(f"unexpected command-line argument {token!r}; config keys are given as --key value")
        name, eq, value = token[2:].partition("=")
        if not eq:
            if i + 1 < len(args) and not args[i + 1].startswith("--"):
                value = args[i + 1]
                i += 1
            else:
                value = "true"
        out[name] = value
        i += 1
    return out


def script_arguments(argv: list[str] | None = None) -> tuple[dict[str, str], list[str]]:
    """RecBole's reading of a script's command line: ``--key=value`` arguments, and the others (not used).

    Nothing is read inside pytest or a Jupyter kernel, whose own arguments are not meant for the config.
    """
    argv = sys.argv if argv is None else argv
    program = argv[0] if argv else ""
    if "ipykernel" in program or "pytest" in program:
        return {}, []
    found: dict[str, str] = {}
    unused: list[str] = []
    for arg in argv[1:]:
        name, eq, value = arg[2:].partition("=")
        if not arg.startswith("--") or not eq or not name:
            unused.append(arg)
        else:
            found[name] = value
    return found, unused


def read_yaml_file(path: str | Path) -> dict[str, Any]:
    """Read one config file; a missing file, a YAML syntax error or a non-mapping is a ConfigError."""
    path = Path(path)
    try:
        text = read_utf8(path, ConfigError, "config file ")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    try:
        data = load_yaml(text)
    except DuplicateKeyError as exc:
        where, problem = describe_yaml_error(exc)
        raise ConfigError(f"config file {path}{where}: {problem}") from None
    except yaml.YAMLError as exc:
        where, problem = describe_yaml_error(exc)
        raise ConfigError(f"config file {path}{where}: invalid YAML ({problem})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of key: value, not a {type(data).__name__}")
    return data
