"""RecBole's configuration keys that recforge reads without using them, and why.

A RecBole YAML file must load unchanged. Every key in it is then one of:

- a recforge key (``recforge.config.keys``, or a hyper-parameter a recforge model declares): used;
- a RecBole setting listed in ``NO_EFFECT`` below: accepted; when its value asks for something recforge does not
  do (anything but RecBole's own default or ``~``) the run warns with the reason;
- a hyper-parameter of a RecBole model that recforge does not implement, or an entry of RecBole's data-set
  download lists (``dataset/url.yaml``): accepted with a warning saying so;
- anything else: an unknown key, an error.

Which names are RecBole's comes from ``recforge.registry.recbole_catalog`` (generated from RecBole 1.2.1's own
files), so this does not depend on RecBole being installed.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import Any

from recforge.errors import ConfigError
from recforge.registry import recbole_catalog

logger = logging.getLogger("recforge")

_DISTRIBUTED = "each process reads its rank from the launcher's environment (LOCAL_RANK, RANK)"
_KNOWLEDGE = "the .kg and .link files are read for knowledge-aware models only"
_LEGACY = "RecBole < 1.0's evaluation setting, which 1.2.1 ignores too; use eval_args"

# RecBole settings (overall.yaml, dataset/*.yaml, quick_start_config/*.yaml) that recforge accepts without effect.
NO_EFFECT: dict[str, str] = {
    "save_dataset": "recforge caches processed data itself (data_cache)",
    "dataset_save_path": "recforge caches processed data itself (data_cache)",
    "save_dataloaders": "loaders are rebuilt from the cached data set in milliseconds",
    "dataloaders_save_path": "loaders are rebuilt from the cached data set in milliseconds",
    "log_wandb": "Weights & Biases logging is not supported; use tensorboard: true",
    "wandb_project": "Weights & Biases logging is not supported; use tensorboard: true",
    "worker": "batches are sliced from in-memory tensors; no loader workers are needed",
    "repeatable": "sequential models always sample repeatably (negatives avoid the target only, as RecBole's "
    "sequential quick-start sets); general models never do",
    "seq_len": "token_seq columns are kept whole (ragged)",
    "SOURCE_ID_FIELD": "social models are not implemented",
    "TARGET_ID_FIELD": "social models are not implemented",
    "local_rank": _DISTRIBUTED,
    "eval_setting": _LEGACY,
    "split_ratio": _LEGACY,
    "leave_one_num": _LEGACY,
    "group_by_user": _LEGACY,
    "training_neg_sample_num": "RecBole < 1.1's name, which 1.2.1 ignores too (with a warning); use "
    "train_neg_sample_args: {sample_num: N}",
}

# What reading a key of NO_EFFECT that no layer set gives (``config["worker"]``): RecBole's own value.
RECBOLE_VALUES: dict[str, Any] = {name: recbole_catalog.DEFAULTS.get(name) for name in NO_EFFECT} | {"local_rank": 0}

# load_col entries for files recforge does not read.
LOAD_COL_NO_EFFECT: dict[str, str] = {"kg": _KNOWLEDGE, "link": _KNOWLEDGE}

_URL_ENTRIES = {name: path for path, names in recbole_catalog.DATASET_URL_FILES.items() for name in names}


def _recbole_model_owners() -> dict[str, list[str]]:
    owners: dict[str, list[str]] = {}
    for model, keys in recbole_catalog.MODEL_KEYS.items():
        for key in keys:
            owners.setdefault(key, []).append(model)
    return owners


RECBOLE_MODEL_OWNERS = _recbole_model_owners()


def is_recbole_default(name: str, value: Any) -> bool:
    """Whether ``value`` asks for nothing: ``~`` or RecBole's own default for ``name``."""
    return value is None or (name in recbole_catalog.DEFAULTS and recbole_catalog.DEFAULTS[name] == value)


def no_effect_reason(name: str, implemented_models: set[str], source_model: str | None = None) -> str | None:
    """Why the RecBole key ``name`` has no effect in recforge, or None if it is not a RecBole key recforge knows.

    ``implemented_models``: lower-case names of the models recforge has (their keys are not "RecBole-only");
    ``source_model``: the RecBole model whose YAML file set the key, named first.
    """
    if name in NO_EFFECT:
        return NO_EFFECT[name]
    owners = [m for m in RECBOLE_MODEL_OWNERS.get(name, ()) if m.lower() not in implemented_models]
    if owners:
        if source_model in owners:
            others = len(owners) - 1
            shown = source_model + (f" (and {others} other model{'s' if others > 1 else ''})" if others else "")
        else:
            shown = ", ".join(owners[:4]) + (f" and {len(owners) - 4} more" if len(owners) > 4 else "")
        return f"hyper-parameter of RecBole's {shown}, which recforge does not implement yet"
    if name in _URL_ENTRIES:
        return f"a download address from RecBole's {_URL_ENTRIES[name]}, not a setting (see `recforge datasets`)"
    return None


@functools.cache
def setting_keys() -> frozenset[str]:
    """RecBole's global / data-set / quick-start setting names (as opposed to model hyper-parameters)."""
    return frozenset(key for keys in recbole_catalog.SETTING_FILES.values() for key in keys)


def legacy_neg_sampling(value: Any, source: str) -> Any:
    """RecBole < 1.1's ``neg_sampling: {uniform: 1}`` as ``train_neg_sample_args``."""
    if value is None:
        return None
    if isinstance(value, Mapping) and len(value) == 1:
        ((distribution, number),) = value.items()
        logger.info("%s: neg_sampling (RecBole's old name) read as train_neg_sample_args", source)
        return {"distribution": distribution, "sample_num": number}
    raise ConfigError(
        f"config key 'neg_sampling' ({source}): {value!r} is not RecBole's old form {{uniform: 1}}; "
        "use train_neg_sample_args: {distribution: uniform, sample_num: 1}"
    )


def warn_ignored(ignored: Mapping[str, str], sources: Mapping[str, list[str]]) -> None:
    """One warning for every accepted key without effect (``ignored``: key -> reason), grouped by reason."""
    if not ignored:
        return
    by_reason: dict[str, list[str]] = {}
    for name, reason in ignored.items():
        by_reason.setdefault(reason, []).append(name)
    lines = []
    for reason, names in by_reason.items():
        shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        where = "; ".join(dict.fromkeys(s for n in names for s in sources[n]))
        lines.append(f"  {shown} ({where}): {reason}")
    logger.warning("config keys accepted without effect:\n%s", "\n".join(lines))
