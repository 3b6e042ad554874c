"""Config defaults of model families, as RecBole's quick_start_config files give them (a layer between the data set's
defaults and the user's files)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Files that knowledge-aware models read besides .inter / .user / .item.
KNOWLEDGE_SUFFIXES = ("kg", "link")


def knowledge_defaults(below: list[Mapping[str, Any]]) -> dict[str, Any]:
    """RecBole's knowledge_base.yaml for knowledge-aware models: the .kg and .link columns added to the load_col
    of the layers below (RecBole replaces it with its ml-100k columns), and the triple-count filters off."""
    load_col = next((layer["load_col"] for layer in reversed(below) if "load_col" in layer), None)
    values: dict[str, Any] = {"entity_kg_num_interval": "[0,inf)", "relation_kg_num_interval": "[0,inf)"}
    if load_col is not None:
        values["load_col"] = {
            **load_col,
            "kg": ["head_id", "relation_id", "tail_id"],
            "link": ["item_id", "entity_id"],
        }
    return values
