"""YAML as recforge reads it: PyYAML's safe loader, refusing a key written twice in one mapping.

PyYAML keeps the last of two equal keys without a word (``epochs: 5`` then ``epochs: 50`` trains 50 epochs);
every YAML file recforge reads (configs, search spaces, data-set defaults, run folders) goes through
``load_yaml`` instead, which names the key and both lines.
"""

from __future__ import annotations

from typing import Any

import yaml


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping holds the same key twice. ``problem_mark`` is the second occurrence (0-based line)."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that raises ``DuplicateKeyError`` on a repeated key (merge keys ``<<`` excepted)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: SafeLoader reports it below
                continue
            if first is not None:
                raise DuplicateKeyError(
                    None,
                    None,
                    f"the key {key!r} is written twice (lines {first.start_mark.line + 1} and "
                    f"{key_node.start_mark.line + 1}); keep one",
                    key_node.start_mark,
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _UniqueKeyLoader.construct_mapping)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load(text)``, but a key repeated within a mapping raises ``DuplicateKeyError`` (a
    ``yaml.YAMLError`` whose ``problem`` names the key and its lines and whose ``problem_mark`` is the repeat)."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass


def describe_yaml_error(exc: yaml.YAMLError) -> tuple[str, str]:
    """``(", line L, column C", problem)`` of a YAML error, for a one-line message ("" where no place is known)."""
    mark = getattr(exc, "problem_mark", None)
    where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return where, str(getattr(exc, "problem", None) or exc)
