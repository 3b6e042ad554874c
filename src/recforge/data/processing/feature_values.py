"""Completing feature values after ids are given: ``FeatureValues`` is a part of ``Dataset`` (a mixin).

Missing floats become the column mean (tokens 0 and sequences empty were set when indexing by id);
``threshold`` turns a column into 0/1 labels; ``normalize_field`` / ``normalize_all`` min-max scale float
columns; ``discretization`` replaces float columns by bucket ids (``field2bucketnum``: how many); ``preload_weight``
builds id-indexed matrices.
"""

from __future__ import annotations

import logging

import numpy as np

from recforge.data.columns import Column, SeqColumn
from recforge.errors import ConfigError

logger = logging.getLogger("recforge")


class FeatureValues:
    """Missing values, labels, normalisation and preloaded weights (see the module docstring)."""

    def _tables(self) -> list[dict[str, Column]]:
        return [t for t in (self.inter_feat, self.user_feat, self.item_feat) if t is not None]

    def _fill_nan(self) -> None:
        for table in self._tables():
            for col in table.values():
                if isinstance(col, np.ndarray) and col.dtype.kind == "f":
                    missing = np.isnan(col)
                    if missing.any() and not missing.all():
                        col[missing] = col[~missing].mean()

    def _apply_threshold(self) -> None:
        threshold = self.config["threshold"]
        if not threshold:
            return
        if len(threshold) != 1:
            raise ConfigError(f"config key 'threshold' takes one column, e.g. {{rating: 4}}; got {threshold}")
        ((field, value),) = threshold.items()
        column = self.inter_feat.get(field)
        if not isinstance(column, np.ndarray) or self.field2type.get(field) != "float":
            raise ConfigError(
                f"config key 'threshold' names {field!r}, which is not a loaded float column of the .inter file"
            )
        self.inter_feat[self.label_field] = (column >= value).astype(np.float64)
        self.field2type[self.label_field] = "float"
        self.field2source[self.label_field] = "inter"
        del self.inter_feat[field]
        del self.field2type[field]

    def _normalize(self) -> None:
        """Min-max scale float / float_seq columns to [0, 1]; a constant column becomes 1.0 (RecBole's rule)."""
        fields_cfg, normalize_all = self.config["normalize_field"], self.config["normalize_all"]
        if fields_cfg and normalize_all:
            raise ConfigError("normalize_field and normalize_all cannot both be set; use one of them")
        if fields_cfg:
            for field in fields_cfg:
                if field not in self.field2type:
                    raise ConfigError(f"config key 'normalize_field' names {field!r}, which is not a loaded column")
            fields = [f for f in fields_cfg if self.field2type[f] in ("float", "float_seq")]
            for field in set(fields_cfg) - set(fields):
                logger.warning(
                    "normalize_field: %s is a %s column and is not normalised", field, self.field2type[field]
                )
        elif normalize_all:
            fields = [f for f, t in self.field2type.items() if t in ("float", "float_seq")]
        else:
            return
        for field in fields:
            for table in self._tables():
                column = table.get(field)
                if column is None:
                    continue
                values = column.values if isinstance(column, SeqColumn) else column
                low, high = (values.min(), values.max()) if len(values) else (0.0, 0.0)
                if high == low:
                    logger.warning("all values of %s are equal; normalised to 1.0", field)
                    scaled = np.ones_like(values, dtype=np.float64)
                else:
                    scaled = (values - low) / (high - low)
                table[field] = SeqColumn(column.offsets, scaled, None) if isinstance(column, SeqColumn) else scaled

    def _discretize(self) -> None:
        """RecBole's ``discretization``: each listed float / float_seq column of ``numerical_features`` becomes bucket
        ids (floats), per table over all its rows (after normalisation), and ``field2bucketnum[field]`` their number
        (the largest id + 1). ED: floor((x - min) * bucket / (max + 1e-9 - min) + 1), ids 1..bucket; LD: values > 2
        become floor(ln(x)^2 + 1), the others stay, then the distinct results are numbered from 0 in order."""
        numerical = set(self.config["numerical_features"] or [])
        for field, info in (self.config["discretization"] or {}).items():
            if field not in self.field2type:
                raise ConfigError(f"config key 'discretization' names {field!r}, which is not a loaded column")
            if field not in numerical:
                raise ConfigError(
                    f"config key 'discretization' names {field!r}, which is not in numerical_features (RecBole's rule; "
                    "numerical_features holds float / float_seq columns only)"
                )
            for table in self._tables():
                column = table.get(field)
                if column is None:
                    continue
                values = column.values if isinstance(column, SeqColumn) else column
                buckets = bucket_ids(np.asarray(values, dtype=np.float64), info["method"], info["bucket"], field)
                self.field2bucketnum[field] = int(buckets.max(initial=0) + 1)
                table[field] = SeqColumn(column.offsets, buckets, None) if isinstance(column, SeqColumn) else buckets

    def _preload_weights(self) -> None:
        tables = {"inter": self.inter_feat, "user": self.user_feat, "item": self.item_feat}
        tables.update({suffix: getattr(self, f"{suffix}_feat") for suffix in self.additional_suffixes()})
        for id_field, value_field in (self.config["preload_weight"] or {}).items():
            for field in (id_field, value_field):
                if field not in self.field2type:
                    raise ConfigError(f"config key 'preload_weight' names {field!r}, which is not a loaded column")
            table = tables[self.field2source[value_field]]
            if table is None or id_field not in table:
                raise ConfigError(
                    f"preload_weight: {id_field!r} and {value_field!r} must be columns of the same file "
                    f"({value_field!r} is in the .{self.field2source[value_field]} file)"
                )
            if self.field2type[id_field] != "token" or self.field2type[value_field] not in ("float", "float_seq"):
                raise ConfigError(
                    f"preload_weight maps a token field to a float / float_seq field, not "
                    f"{self.field2type[id_field]} -> {self.field2type[value_field]}"
                )
            ids, values = table[id_field], table[value_field]
            if isinstance(values, SeqColumn):
                matrix = np.zeros((self.num(id_field), int(values.lengths.max(initial=0))))
                matrix[ids] = values.padded()
            else:
                matrix = np.zeros(self.num(id_field))
                matrix[ids] = values
            self._preloaded_weight[id_field] = matrix


def bucket_ids(values: np.ndarray, method: str, bucket: int | None, field: str) -> np.ndarray:
    """RecBole's ``disc``: the bucket id of each value, as floats (see ``FeatureValues._discretize``)."""
    if len(values) == 0:
        return values
    if method == "ED":
        lower, upper = values.min(), values.max() + 1e-9
        if upper == lower:  # the values are too large for the 1e-9 to count
            logger.warning("discretization: all values of %s are equal; all in bucket %d", field, bucket)
            return np.full_like(values, float(bucket))
        return np.floor((values - lower) * bucket / (upper - lower) + 1)
    above = values > 2
    logs = np.floor(np.log(values * above + 1e-9) ** 2 + 1)
    _, ids = np.unique(np.where(above, logs, values), return_inverse=True)
    return ids.reshape(-1).astype(np.float64)
