"""Checks that span several config keys, run when a config is read so that a bad combination fails before any
data is loaded: the metrics and the validation metric, time order, intervals, normalisation."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from recforge.config.intervals import parse_intervals
from recforge.errors import ConfigError
from recforge.registry import metric_spec

logger = logging.getLogger("recforge")

# RecBole's ``smaller_metrics``: the metrics where lower is better (recforge.evaluator.register lists the same).
SMALLER_IS_BETTER = frozenset({"mae", "rmse", "logloss", "averagepopularity", "giniindex"})
# What RecBole does with a valid_metric that is not computed (recforge refuses it when the config is read).
_AT_VALIDATION = " (RecBole would fail at the first validation with a KeyError)"


def check_metric_config(metrics: list[str], topk: list[int], valid_metric: str, modes: Mapping[str, str]) -> None:
    """Reject unknown metrics and a valid_metric that is not computed. Whether a metric applies to an evaluation
    mode is checked when a loader of that mode is evaluated (``recforge.evaluation.evaluator.check_mode``): as in
    RecBole, a config may build loaders that are only read."""
    for name in metrics:
        metric_spec(name)
    name, at, k = valid_metric.partition("@")
    computed = {m.lower() for m in metrics}
    if name.lower() not in computed:
        raise ConfigError(
            f"config key 'valid_metric': {valid_metric!r} is not among the computed metrics "
            f"({', '.join(metrics)}); add {name!r} to metrics or pick one of them{_AT_VALIDATION}"
        )
    if metric_spec(name).at_k:
        if not at or not k.strip().isdigit():
            raise ConfigError(
                f"config key 'valid_metric': {valid_metric!r} needs a cut-off, e.g. {name}@{topk[0]}{_AT_VALIDATION}"
            )
        if int(k) not in topk:
            raise ConfigError(
                f"config key 'valid_metric': {valid_metric!r} uses k={k}, which is not in topk {topk}{_AT_VALIDATION}"
            )
    elif at:
        raise ConfigError(f"config key 'valid_metric': {name} has no cut-off; write {name}{_AT_VALIDATION}")


def fit_valid_metric(values: dict[str, Any], user_set: Callable[[str], bool]) -> None:
    """A ``valid_metric`` that no user layer set follows ``metrics`` and ``topk`` (its metric at the first k when
    its k is not computed, the first metric when its metric is not), where RecBole would fail at the first
    validation; a warning names the change."""
    if user_set("valid_metric"):
        return
    default, metrics, topk = values["valid_metric"], values["metrics"], values["topk"]
    name, _, k = default.partition("@")
    if name.lower() not in {m.lower() for m in metrics}:
        name, k = metrics[0], ""
    fitted = name
    if metric_spec(name).at_k:
        fitted = f"{name}@{k if k.strip().isdigit() and int(k) in topk else topk[0]}"
    if fitted != default:
        logger.warning(
            "valid_metric: the default %s is not computed with metrics %s and topk %s, so %s selects the best epoch "
            "(RecBole would fail at the first validation); set valid_metric to choose another",
            default,
            metrics,
            topk,
            fitted,
        )
        values["valid_metric"] = fitted


def fit_metric_direction(values: dict[str, Any], user_set: Callable[[str], bool]) -> None:
    """``valid_metric_bigger`` from the valid metric (RecBole's rule) when no user layer set it; a value set
    against the metric's direction is kept, with a warning."""
    name = values["valid_metric"].partition("@")[0]
    smaller = name.lower() in SMALLER_IS_BETTER
    if not user_set("valid_metric_bigger"):
        values["valid_metric_bigger"] = not smaller
    elif values["valid_metric_bigger"] == smaller:
        logger.warning(
            "valid_metric_bigger is %s, but %s is better when %s; recforge uses the value given (RecBole ignores it "
            "and follows the metric)",
            values["valid_metric_bigger"],
            name,
            "smaller" if smaller else "bigger",
        )


def check_config(values: Mapping[str, Any]) -> None:
    """Every cross-key check; raises ConfigError naming the keys."""
    check_metric_config(values["metrics"], values["topk"], values["valid_metric"], values["eval_args"]["mode"])
    if values["eval_args"]["order"] == "TO" and not values["TIME_FIELD"]:
        raise ConfigError("eval_args.order TO sorts interactions by time, but TIME_FIELD is none")
    for key in ("user_inter_num_interval", "item_inter_num_interval"):
        parse_intervals(values[key], key)
    for field, allowed in (values["val_interval"] or {}).items():
        if isinstance(allowed, str):
            parse_intervals(allowed, f"val_interval.{field}")
        elif not isinstance(allowed, list):
            raise ConfigError(
                f"config key 'val_interval.{field}': {allowed!r} is neither an interval like '[3,inf)' "
                "(float columns) nor a list of tokens (token columns)"
            )
    if values["normalize_field"] and values["normalize_all"]:
        raise ConfigError("normalize_field and normalize_all cannot both be set; use one of them")


def check_processes(values: Mapping[str, Any], model_class: type) -> None:
    """Models fitted in one pass or by boosting have no gradients to share: they run in one process."""
    from recforge.utils.enum_type import ModelType

    processes = max(values["nproc"], values["world_size"] or 1)
    if processes <= 1:
        return
    boosted = getattr(model_class, "type", None) == ModelType.DECISIONTREE
    if boosted or not getattr(model_class, "trainable", True):
        raise ConfigError(
            f"{model_class.__name__} is fitted {'by boosting' if boosted else 'in one pass'}, not by gradient steps, "
            f"so it cannot be trained by several processes (nproc {values['nproc']}); run it with nproc 1"
        )
