"""Config defaults of model families, as RecBole's quick_start_config files give them (a layer between the data set's
defaults and the user's files)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


def context_defaults(dataset_name: str, user_eval_args: Sequence[Any] = ()) -> dict[str, Any]:
    """RecBole's context-aware.yaml for context-aware and tree models (labelled evaluation of an 80/10/10 random
    split with AUC and LogLoss, no negative sampling), and for ml-100k its context-aware_ml-100k.yaml (labels
    rating >= 4; the users' and items' feature columns loaded).

    ``user_eval_args`` are the ``eval_args`` of the user's files: when there is one, it replaces this one whole (as
    RecBole replaces the dict and fills missing entries from its defaults, mode full among them); when it asks for
    a ranking evaluation, the AUC / LogLoss metrics do not apply either (the package's ranking metrics do).
    """
    values: dict[str, Any] = {"train_neg_sample_args": None}
    if not user_eval_args:
        values["eval_args"] = {"split": {"RS": [0.8, 0.1, 0.1]}, "order": "RO", "group_by": None, "mode": "labeled"}
    modes = [args.get("mode", "full") if isinstance(args, Mapping) else None for args in user_eval_args]
    if not user_eval_args or modes[-1] == "labeled" or isinstance(modes[-1], Mapping):
        values.update(metrics=["AUC", "LogLoss"], valid_metric="AUC")
    if dataset_name == "ml-100k":
        values["threshold"] = {"rating": 4}
        values["load_col"] = {
            "inter": ["user_id", "item_id", "rating", "timestamp"],
            "user": ["user_id", "age", "gender", "occupation"],
            "item": ["item_id", "release_year", "class"],
        }
    return values
