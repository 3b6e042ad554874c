"""Which columns are features of a (user, item) pair, for context-aware and tree models.

A feature row describes one pair: the interaction's own columns (its context, e.g. a timestamp), then the user's
columns (``.user``), then the item's (``.item``), in RecBole's order (``.inter`` columns in file order, then
``.user``, then ``.item``). The label column is never a feature. Ranking evaluation scores candidate pairs that
have no interaction row, so when any evaluation phase ranks (``full``, ``uniN``, ``popN``), the interaction's
context columns are left out of the features (and a line of the log names them): training and scoring then see
the same columns. In ``labeled`` evaluation every scored row is an interaction and its context is used, except
token_seq / float_seq columns of the ``.inter`` file, which are never features (batches carry flat columns only).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("recforge")


@dataclass(frozen=True)
class FeatureField:
    """One feature column: its ``name``, ``type`` (token, token_seq, float, float_seq), ``source``
    (``inter``, ``user`` or ``item``: which table, indexed by what, holds its values) and, for a float column that
    ``discretization`` turned into bucket ids, ``buckets`` (their number; 0 for values)."""

    name: str
    type: str
    source: str
    buckets: int = 0


def ranks_candidates(config: Mapping[str, Any]) -> bool:
    """Whether some evaluation phase scores candidate pairs (full ranking or sampled negatives)."""
    modes = (config["eval_args"] or {}).get("mode") or {}
    return any(mode != "labeled" for mode in modes.values())


def feature_fields(dataset, config: Mapping[str, Any], floats: bool | list[str] = True) -> list[FeatureField]:
    """The feature columns of ``dataset`` (any split) in order: ids and context columns of ``.inter``, then the
    user's, then the item's.

    Args:
        dataset: a ``Dataset``.
        config: the run config (``LABEL_FIELD``, ``eval_args``).
        floats: which float / float_seq columns are features: all (True), or only those listed (RecBole's
            ``numerical_features`` for the neural context-aware models).
    """
    label = config["LABEL_FIELD"]
    uid, iid = dataset.uid_field, dataset.iid_field
    buckets = getattr(dataset, "field2bucketnum", {})
    keep_context = not ranks_candidates(config)
    dropped: list[str] = []
    out: list[FeatureField] = []

    def wanted(name: str) -> bool:
        kind = dataset.field2type[name]
        return kind.startswith("token") or floats is True or name in floats

    for name in dataset.inter_feat:
        if name == label or not wanted(name):
            continue
        if name in (uid, iid):
            out.append(FeatureField(name, "token", "user" if name == uid else "item"))
        elif dataset.field2type[name].endswith("_seq"):
            dropped.append(name)
        elif keep_context:
            out.append(FeatureField(name, dataset.field2type[name], "inter", buckets.get(name, 0)))
        else:
            dropped.append(name)
    if dropped:
        logger.info(
            "interaction columns %s are not features (sequence columns of the .inter file never are; the others "
            "not when an evaluation ranks candidate pairs, which have no interaction row)",
            ", ".join(dropped),
        )
    for source, table, id_field in (("user", dataset.user_feat, uid), ("item", dataset.item_feat, iid)):
        for name in table or {}:
            if name != id_field and name != label and wanted(name):
                out.append(FeatureField(name, dataset.field2type[name], source, buckets.get(name, 0)))
    return out
