"""Config defaults of model families, as RecBole's quick_start_config files give them (a layer between the data set's
defaults and the user's files)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from recforge.errors import ConfigError

logger = logging.getLogger("recforge")

# Files that knowledge-aware models read besides .inter / .user / .item.
KNOWLEDGE_SUFFIXES = ("kg", "link")


def reads_knowledge_graph(model_class: type | None) -> bool:
    """Whether a model reads the .kg and .link files: knowledge-aware models and the sequential ones that declare
    ``reads_knowledge_graph`` (KSR, GRU4RecKG)."""
    from recforge.utils.enum_type import ModelType

    return getattr(model_class, "type", None) == ModelType.KNOWLEDGE or bool(
        getattr(model_class, "reads_knowledge_graph", False)
    )


def knowledge_defaults(below: list[Mapping[str, Any]], model_class: type | None = None) -> dict[str, Any]:
    """RecBole's knowledge_base.yaml for knowledge-aware models: the .kg and .link columns added to the load_col
    of the layers below (RecBole replaces it with its ml-100k columns), and the triple-count filters off.

    Models that read pretrained entity / relation vectors (``knowledge_embeddings``: ``((suffix, (id field, vector
    field)), ...)``, the entities' first, KSR and GRU4RecKG) also get those files read and preloaded: RecBole's
    sequential_embedding_model.yaml, completed so that it runs (RecBole's loads neither the .kg / .link files nor
    the vectors into ``preload_weight``; docs/architecture.md).
    """
    load_col = next((layer["load_col"] for layer in reversed(below) if "load_col" in layer), None)
    values: dict[str, Any] = {"entity_kg_num_interval": "[0,inf)", "relation_kg_num_interval": "[0,inf)"}
    embeddings: dict[str, tuple[str, str]] = dict(getattr(model_class, "knowledge_embeddings", ()))
    if load_col is not None:
        values["load_col"] = {
            **load_col,
            "kg": ["head_id", "relation_id", "tail_id"],
            "link": ["item_id", "entity_id"],
            **{suffix: list(fields) for suffix, fields in embeddings.items()},
        }
    if embeddings:
        values["additional_feat_suffix"] = list(embeddings)
        values["preload_weight"] = dict(embeddings.values())
        entity, *relation = (fields[0] for fields in embeddings.values())
        values["alias_of_entity_id"] = [entity]
        if relation:
            values["alias_of_relation_id"] = relation
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


def family_defaults(
    family: Any, dataset_name: str, user_eval_args: Sequence[Any], model_class: type | None = None
) -> list[tuple[str, dict]]:
    """The defaults layer of a model family (``ModelType``) as ``[(source, values)]``: context-aware and tree
    models' (labelled evaluation), sequential models' (leave-one-out in time order; on ml-100k the item columns
    for models that read item features); none for the others."""
    from recforge.utils.enum_type import ModelType

    if family in (ModelType.CONTEXT, ModelType.DECISIONTREE):
        return [("context-aware defaults", context_defaults(dataset_name, user_eval_args))]
    if family == ModelType.SEQUENTIAL and getattr(model_class, "click_through", False):
        layers = [("click-through sequential defaults", click_through_defaults(user_eval_args))]
        if dataset_name == "ml-100k":
            layers.append(("click-through defaults (ml-100k)", {"load_col": ML100K_CLICK_COLUMNS}))
        return layers
    if family == ModelType.SEQUENTIAL:
        layers = [("sequential defaults", sequential_defaults(user_eval_args))]
        if dataset_name == "ml-100k" and getattr(model_class, "reads_item_features", False):
            layers.append(("sequential item-feature defaults (ml-100k)", {"load_col": ML100K_ITEM_FEATURE_COLUMNS}))
        return layers
    return []


# RecBole's sequential_DIN_on_ml-100k.yaml, for DIN and DIEN
ML100K_CLICK_COLUMNS = {
    "inter": ["user_id", "item_id", "rating", "timestamp"],
    "user": ["user_id", "age", "gender", "occupation"],
    "item": ["item_id", "release_year"],
}


def click_through_defaults(user_eval_args: Sequence[Any] = ()) -> dict[str, Any]:
    """RecBole's sequential_DIN.yaml for DIN and DIEN: leave-one-out in time order, each target against 100 uniformly
    sampled items, AUC and LogLoss. An ``eval_args`` of the user's files replaces it whole; when it ranks in full,
    the AUC / LogLoss defaults do not apply either (as for context-aware models)."""
    values: dict[str, Any] = {}
    if not user_eval_args:
        values["eval_args"] = {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "uni100"}
    modes = [args.get("mode", "full") if isinstance(args, Mapping) else None for args in user_eval_args]
    if not user_eval_args or modes[-1] != "full":
        values.update(metrics=["AUC", "LogLoss"], valid_metric="AUC")
    return values


# RecBole's special_sequential_on_ml-100k.yaml, which it applies to the sequential models that read item features
ML100K_ITEM_FEATURE_COLUMNS = {
    "inter": ["user_id", "item_id", "rating", "timestamp"],
    "item": ["item_id", "release_year", "class"],
}


def sequential_defaults(user_eval_args: Sequence[Any] = ()) -> dict[str, Any]:
    """RecBole's sequential.yaml for sequential models: each user's last example tested, the one before validated,
    in time order, ranked against every item. An ``eval_args`` of the user's files replaces it whole (RecBole's
    rule, as for context-aware models)."""
    if user_eval_args:
        return {}
    return {"eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full"}}


def fit_sequential_keys(values: dict[str, Any], user_set: Callable[[str], bool], source: Callable[[str], str]) -> None:
    """The fitted defaults of sequential models; ``source(key)``: where a key was set. (Their order is checked
    when the examples are split, as RecBole does: a config that names another order still loads.)"""
    fit_sequential_negatives(values, user_set, source("train_neg_sample_args"))


def check_sequential_order(values: Mapping[str, Any], source: str) -> None:
    """Sequential examples predict the next item in time: ``eval_args.order`` must be TO (RecBole refuses RO too),
    unless ``benchmark_filename`` gives the split. ``source``: where ``eval_args`` was set."""
    if values["eval_args"]["order"] != "TO" and not values.get("benchmark_filename"):
        raise ConfigError(
            f"config key 'eval_args' ({source}): order {values['eval_args']['order']} is not possible for sequential "
            "models, whose examples are histories in time order; set eval_args: {order: TO}"
        )


def fit_sequential_negatives(values: dict[str, Any], user_set: Callable[[str], bool], source: str) -> None:
    """A sequential model with ``loss_type: CE`` (or NLL, gBCE) scores the target against every item (or draws its
    own negatives) and trains without the loader's sampled negatives. The package default of
    ``train_neg_sample_args`` (one uniform negative, also when a file such as RecBole's overall.yaml writes it out)
    is then switched off with an info line, where RecBole fails on it (its issues #955, #1208); other negatives the
    user asked for are refused.
    ``source``: where ``train_neg_sample_args`` was set."""
    loss_type = values.get("loss_type")
    if loss_type in (None, "BPR") or not values.get("train_neg_sample_args"):
        return
    from recforge.config.structs import NEG_SAMPLE_ARGS

    # RecBole's overall.yaml writes the default out; only another setting is a request for negatives
    if user_set("train_neg_sample_args") and dict(values["train_neg_sample_args"]) != dict(NEG_SAMPLE_ARGS.defaults):
        raise ConfigError(
            f"config key 'train_neg_sample_args' ({source}) asks for sampled negatives, but loss_type {loss_type} "
            "uses none from the loader; set train_neg_sample_args: ~ or loss_type: BPR"
        )
    logger.info("loss_type %s trains without sampled negatives: train_neg_sample_args is none", loss_type)
    values["train_neg_sample_args"] = None
