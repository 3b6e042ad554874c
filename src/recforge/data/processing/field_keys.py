"""Config keys that name fields, checked against the fields a data set loaded (as ``load_col`` is).

A misspelt field in such a key would otherwise be ignored without a word (``numerical_features: [pricee]``
trains without the price). ``check_field_keys`` runs once the files are read, before anything is filtered or
computed, and raises a ConfigError naming the key, the field, the closest loaded one and what was loaded.
Keys checked where they are used (``threshold``, ``val_interval``, ``normalize_field``, ``preload_weight``) and
``load_col`` itself (checked against the files' headers) are not repeated here.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from recforge.errors import ConfigError, did_you_mean

logger = logging.getLogger("recforge")

# Keys holding a list of fields (of any file) and the field types they may name.
LISTS = {
    "numerical_features": ("float", "float_seq"),  # token fields are always features: only floats are chosen
    "alias_of_user_id": ("token", "token_seq"),
    "alias_of_item_id": ("token", "token_seq"),
    "alias_of_entity_id": ("token", "token_seq"),
    "alias_of_relation_id": ("token", "token_seq"),
}
# Keys naming one field, checked only when a user set them, with a warning: RecBole's YAML files set them for
# data sets that lack the field (an implicit-feedback data set keeps RATING_FIELD: rating), and RecBole uses none.
SINGLE = ("RATING_FIELD", "TIME_FIELD")


def check_field_keys(
    config: Any, field2type: Mapping[str, str], field2source: Mapping[str, str], skip: Collection[str] = ()
) -> None:
    """Raise a ConfigError for the first field-naming key that names a field the data set did not load.

    ``field2type`` / ``field2source``: every loaded field's type and file suffix ("inter", "user", "item", ...).
    ``skip``: keys not to check (a data set from the cache was checked when it was built, with the same
    processing keys, before processing consumed fields such as a rating turned into labels).
    """
    for key, allowed in LISTS.items():
        for field in _fields(config.get(key) if key not in skip else None):
            _require(key, field, field2type, allowed)
    for key in ("unused_col",):
        for suffix, fields in (config.get(key) or {}).items():
            loaded = {f for f, s in field2source.items() if s == suffix}
            for field in _fields(fields):
                if field not in loaded:
                    raise ConfigError(
                        f"config key '{key}' names {field!r} of the .{suffix} file, which is not a loaded column of it"
                        f"{did_you_mean(field, loaded)}; loaded: {', '.join(sorted(loaded)) or 'none'}"
                    )
    for key in (k for k in SINGLE if k not in skip):
        field = config.get(key)
        if field and _set_by_user(config, key) and field not in field2type:
            logger.warning(
                "config key '%s' names %r, which is not a loaded field%s: none is used (loaded: %s)",
                key,
                field,
                did_you_mean(field, field2type),
                ", ".join(field2type),
            )


def _fields(value: Any) -> Iterable[str]:
    if value is None:
        return ()
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _require(key: str, field: str, field2type: Mapping[str, str], allowed: tuple[str, ...] | None) -> None:
    if field not in field2type:
        raise ConfigError(
            f"config key '{key}' names {field!r}, which is not a loaded field{did_you_mean(field, field2type)}; "
            f"loaded: {', '.join(field2type)} (load_col decides which columns are loaded)"
        )
    if allowed is not None and field2type[field] not in allowed:
        raise ConfigError(
            f"config key '{key}' names {field!r}, a {field2type[field]} field; it takes {' or '.join(allowed)} fields"
        )


def _set_by_user(config: Any, key: str) -> bool:
    """Whether ``key`` comes from a config file, the config dict or the command line (not from defaults or a
    resumed checkpoint's config, which holds every key)."""
    source = getattr(config, "source", None)
    if source is None:
        return True
    where = source(key)
    return where in ("config_dict", "the command line") or where.startswith("config file")
