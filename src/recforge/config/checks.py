"""Checks that span several config keys, run when a config is read so that a bad combination fails before any
data is loaded: metrics against evaluation modes, the validation metric, time order, intervals, normalisation."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from recforge.config.intervals import parse_intervals
from recforge.errors import ConfigError
from recforge.registry import BEYOND, RANKING, VALUE, metric_spec


def mode_family(mode: str) -> str:
    """ "full", "sampled" (uniN / popN) or "labeled"."""
    return "sampled" if re.fullmatch(r"(uni|pop)\d+", mode) else mode


def check_metric_config(metrics: list[str], topk: list[int], valid_metric: str, modes: Mapping[str, str]) -> None:
    """Reject unknown metrics, metrics that cannot apply to an evaluation mode, and a valid_metric that is not
    computed.

    Ranking and beyond-accuracy metrics need ranked candidates (full, uniN, popN); value metrics need labels
    (labeled, or uniN / popN where the positives are labelled 1 and the sampled negatives 0, as in RecBole).
    """
    for name in metrics:
        kind = metric_spec(name).kind
        for phase, mode in modes.items():
            family = mode_family(mode)
            if kind in (RANKING, BEYOND) and family == "labeled":
                raise ConfigError(
                    f"metric {name} ranks items, but eval_args.mode.{phase} is 'labeled', which scores the labelled "
                    "interactions one by one; use a value metric (AUC, GAUC, LogLoss, MAE, RMSE) or mode full / uniN"
                )
            if kind == VALUE and family == "full":
                raise ConfigError(
                    f"metric {name} compares predictions with labels, but eval_args.mode.{phase} is 'full', which has "
                    "no labels; use mode labeled (with threshold or a label column), uniN / popN (positives against "
                    "sampled negatives) or a ranking metric"
                )
    name, at, k = valid_metric.partition("@")
    computed = {m.lower() for m in metrics}
    if name.lower() not in computed:
        raise ConfigError(
            f"config key 'valid_metric': {valid_metric!r} is not among the computed metrics "
            f"({', '.join(metrics)}); add {name!r} to metrics or pick one of them"
        )
    if metric_spec(name).at_k:
        if not at or not k.strip().isdigit():
            raise ConfigError(f"config key 'valid_metric': {valid_metric!r} needs a cut-off, e.g. {name}@{topk[0]}")
        if int(k) not in topk:
            raise ConfigError(f"config key 'valid_metric': {valid_metric!r} uses k={k}, which is not in topk {topk}")
    elif at:
        raise ConfigError(f"config key 'valid_metric': {name} has no cut-off; write {name}")


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
