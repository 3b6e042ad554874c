"""The interaction data set: atomic files loaded, filtered and remapped to integer ids, RecBole's way.

``Dataset`` holds the result and RecBole's public attributes; the processing is split by step:

1. loading and ids (``recforge.data.processing.loading``): ``.inter``, ``.user``, ``.item`` per ``load_col``, one code
   space per id group, ids by first appearance (0 is ``[PAD]``), feature tables indexed by id;
2. filters in RecBole's order (``recforge.data.processing.filters``): rows without ids, ``rm_dup_inter``,
   ``val_interval``, ``filter_inter_by_user_or_item``, ``user_inter_num_interval`` / ``item_inter_num_interval``;
3. feature values (``recforge.data.processing.feature_values``): missing values, ``threshold`` labels, normalisation,
   ``discretization``, ``preload_weight``.

``unused_col`` columns stay available until the split and are dropped from its parts. With ``benchmark_filename``
the interactions come from one file per part and the parts are the split (``recforge.data.split.rules``). Columns are
NumPy arrays (ids int64, floats float64) or ragged ``SeqColumn``s. ``inter_feat`` has one row per interaction;
``user_feat`` / ``item_feat`` one row per id (row 0 is padding). ``create_dataset`` reads a processed data set
from the cache (``recforge.data.cache.datasets``) where it can; ``Dataset(config)`` always processes the files.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from recforge.data.columns import Column, SeqColumn, as_table, take
from recforge.data.files.location import resolve_dataset_dir
from recforge.data.interaction import BatchFeatures
from recforge.data.processing.feature_values import FeatureValues
from recforge.data.processing.loading import AtomicLoading
from recforge.data.processing.vocabulary import PAD

logger = logging.getLogger("recforge")

# Config keys whose values change the processed data (they key the processed-data cache).
PROCESSING_KEYS = (
    "USER_ID_FIELD",
    "ITEM_ID_FIELD",
    "RATING_FIELD",
    "TIME_FIELD",
    "LABEL_FIELD",
    "load_col",
    "unload_col",
    "field_separator",
    "seq_separator",
    "rm_dup_inter",
    "val_interval",
    "filter_inter_by_user_or_item",
    "user_inter_num_interval",
    "item_inter_num_interval",
    "alias_of_user_id",
    "alias_of_item_id",
    "threshold",
    "normalize_field",
    "normalize_all",
    "discretization",
    "preload_weight",
    "additional_feat_suffix",
    "HEAD_ENTITY_ID_FIELD",
    "TAIL_ENTITY_ID_FIELD",
    "RELATION_ID_FIELD",
    "ENTITY_ID_FIELD",
    "kg_reverse_r",
    "entity_kg_num_interval",
    "relation_kg_num_interval",
    "alias_of_entity_id",
    "alias_of_relation_id",
    "convert_token_to_onehot",  # the feature matrices of tree models (``derived``)
    "token_num_threhold",
    "benchmark_filename",  # which files are the parts, in which order (the files' digests alone lose the order)
)


class Dataset(AtomicLoading, FeatureValues):
    """An interaction data set with RecBole's public attributes.

    Attributes:
        dataset_name: the data set's name.
        dataset_path: the folder its atomic files were read from.
        uid_field, iid_field, rating_field, time_field, label_field: column names from the config.
        inter_feat: ``{field: column}``, one row per interaction.
        user_feat, item_feat: ``{field: column}`` with row ``i`` describing id ``i``, or None when not loaded.
        field2type: ``{field: "token" | "token_seq" | "float" | "float_seq"}``.
        field2source: ``{field: "inter" | "user" | "item"}`` (the file a field was read from).
        field2id_token: ``{field: object array}``, id -> token (index 0 is ``[PAD]``); alias fields share it.
        user_num, item_num: number of ids including padding (as in RecBole).
    """

    cached_tables: tuple[str, ...] = ("inter", "user", "item")  # the ``<name>_feat`` tables the cache stores

    # The tables behave as RecBole's ``Interaction`` (``recforge.data.columns.FeatureTable``) whatever assigns them.
    inter_feat = property(lambda self: self._inter_feat, lambda self, t: setattr(self, "_inter_feat", as_table(t)))
    user_feat = property(lambda self: self._user_feat, lambda self, t: setattr(self, "_user_feat", as_table(t)))
    item_feat = property(lambda self: self._item_feat, lambda self, t: setattr(self, "_item_feat", as_table(t)))

    def __init__(self, config: Mapping[str, Any]) -> None:
        """Read, filter and complete the data set the config names from its atomic files (no cache: see
        ``recforge.data.create_dataset``)."""
        self._set_fields(config)
        self.process()
        self.finish()

    @classmethod
    def unprocessed(cls, config: Mapping[str, Any]) -> Dataset:
        """An instance with the config's fields set and empty tables, nothing read: what a cache entry fills or
        ``process`` builds."""
        dataset = cls.__new__(cls)
        dataset._set_fields(config)
        return dataset

    def _set_fields(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self.dataset_name: str = config["dataset"]
        self.uid_field: str = config["USER_ID_FIELD"]
        self.iid_field: str = config["ITEM_ID_FIELD"]
        self.rating_field: str | None = config["RATING_FIELD"]
        self.time_field: str | None = config["TIME_FIELD"]
        self.label_field: str = config["LABEL_FIELD"]
        self.dataset_path: Path = dataset_dir(config)
        self.field2type: dict[str, str] = {}
        self.field2source: dict[str, str] = {}
        self.field2id_token: dict[str, np.ndarray] = {}
        self.inter_feat = {}
        self.user_feat = None
        self.item_feat = None
        for suffix in self.additional_suffixes():
            setattr(self, f"{suffix}_feat", None)
        self._preloaded_weight: dict[str, np.ndarray] = {}
        self.field2bucketnum: dict[str, int] = {}  # discretised float columns: their number of buckets
        self.derived: dict[str, np.ndarray] = {}  # arrays computed from the processed data, cached with it
        self._token2id_cache: dict[str, dict[str, int]] = {}
        self._removed_so_far: dict[str, int] = {}
        self.processing_log: list[str] = []
        # The processed-data cache entry holding this data set (its split and histories are cached beside it).
        self.cache_entry: Path | None = None

    def stored_tables(self) -> tuple[str, ...]:
        """The ``<name>_feat`` tables the processed-data cache stores: ``cached_tables`` and the
        ``additional_feat_suffix`` files'."""
        return (*self.cached_tables, *self.additional_suffixes())

    def process(self) -> None:
        """Load, filter and complete the data from the atomic files (the steps of the module docstring)."""
        self._build()
        self._derive()

    def _derive(self) -> None:
        """Arrays later steps need that are worth caching: the user / item feature matrices of tree models."""
        from recforge.utils.enum_type import ModelType

        if self.config.get("MODEL_TYPE") == ModelType.DECISIONTREE:
            from recforge.data.features.matrix import FeatureEncoder

            FeatureEncoder(self, self.config)  # stores its id blocks in ``derived``

    def finish(self) -> None:
        """Complete the processed data (cached or just built) with what is not cached: nothing here; the examples
        of ``SequentialDataset``."""

    # -- public API --------------------------------------------------------------------------------
    def time_sort_key(self, time: np.ndarray) -> np.ndarray:
        """The times as eval_args' TO order compares them (as they are here; ``SequentialDataset`` rounds them)."""
        return time

    @property
    def user_num(self) -> int:
        """Number of user ids, padding included."""
        return len(self.field2id_token[self.uid_field])

    @property
    def item_num(self) -> int:
        """Number of item ids, padding included."""
        return len(self.field2id_token[self.iid_field])

    @property
    def inter_num(self) -> int:
        return len(self.inter_feat[self.uid_field])

    def __len__(self) -> int:
        return self.inter_num

    def num(self, field: str) -> int:
        """Number of ids of a token field (padding included) or 1 for a float field, as in RecBole."""
        if field in self.field2id_token:
            return len(self.field2id_token[field])
        if field in self.field2type:
            return 1
        raise KeyError(f"unknown field {field!r}")

    @property
    def sparsity(self) -> float:
        return 1.0 - self.inter_num / max((self.user_num - 1) * (self.item_num - 1), 1)

    @property
    def item_counts(self) -> np.ndarray:
        """Interactions per item id, [item_num] int64."""
        return np.bincount(self.inter_feat[self.iid_field], minlength=self.item_num)

    def id2token(self, field: str, ids: Any) -> Any:
        """Tokens of ``ids`` (an int or an array of ints)."""
        return self.field2id_token[field][ids]

    def token2id(self, field: str, tokens: Any) -> Any:
        """Ids of ``tokens`` (a str or a sequence of str); an unknown token is a KeyError naming it."""
        table = self._token2id_cache.get(field)
        if table is None:
            table = {t: i for i, t in enumerate(self.field2id_token[field])}
            self._token2id_cache[field] = table
        try:
            if isinstance(tokens, str):
                return table[tokens]
            return np.array([table[t] for t in tokens], dtype=np.int64)
        except KeyError as exc:
            raise KeyError(f"token {exc.args[0]!r} is not in field {field!r}") from None

    def get_preload_weight(self, field: str) -> np.ndarray:
        """The ``preload_weight`` matrix of ``field``: row ``i`` is id ``i``'s vector (row 0: zeros)."""
        if field not in self._preloaded_weight:
            raise KeyError(f"field {field!r} is not in preload_weight")
        return self._preloaded_weight[field]

    def batch_features(self) -> BatchFeatures:
        """What batches of this data set join on first read: its user and item features (RecBole's batches hold
        them; see ``recforge.data.interaction``)."""
        return BatchFeatures(self.user_feat, self.item_feat, self.uid_field, self.iid_field, self.config["NEG_PREFIX"])

    def join(self, columns: Mapping[str, Any]) -> dict[str, Any]:
        """``columns`` (a batch: user and item ids) with the user's and item's feature columns added (RecBole's
        ``Dataset.join``); sequence features are padded to the longest row."""
        import torch

        out = dict(columns)
        for field, table in ((self.uid_field, self.user_feat), (self.iid_field, self.item_feat)):
            if table is None or field not in columns:
                continue
            ids = np.asarray(columns[field].cpu() if hasattr(columns[field], "cpu") else columns[field])
            for name, column in table.items():
                if name == field:
                    continue
                values = column.take(ids.reshape(-1)).padded() if isinstance(column, SeqColumn) else column[ids]
                tensor = torch.from_numpy(np.ascontiguousarray(values))
                out[name] = tensor.float() if tensor.is_floating_point() else tensor
        return out

    def inter_matrix(self, form: str = "coo", value_field: str | None = None):
        """The user x item matrix (scipy.sparse, shape [user_num, item_num]); repeated pairs add up.

        Values are 1, or the column ``value_field``.
        """
        import scipy.sparse as sp

        rows, cols = self.inter_feat[self.uid_field], self.inter_feat[self.iid_field]
        if value_field is None:
            data = np.ones(len(rows), dtype=np.float32)
        else:
            if value_field not in self.inter_feat:
                raise KeyError(f"value_field {value_field!r} is not a column of inter_feat")
            data = np.asarray(self.inter_feat[value_field], dtype=np.float32)
        matrix = sp.coo_matrix((data, (rows, cols)), shape=(self.user_num, self.item_num))
        if form == "coo":
            return matrix
        if form == "csr":
            return matrix.tocsr()
        raise ValueError(f"form must be 'coo' or 'csr', not {form!r}")

    def copy(self, new_inter_feat: dict[str, Column]) -> Dataset:
        """A dataset sharing vocabularies and feature tables, with other interactions (used by splits)."""
        clone = copy.copy(self)
        clone.inter_feat = new_inter_feat
        return clone

    def drop_unused(self) -> None:
        """Drop the ``unused_col`` columns (RecBole does this after splitting)."""
        for suffix, fields in (self.config["unused_col"] or {}).items():
            table = {"inter": self.inter_feat, "user": self.user_feat, "item": self.item_feat}.get(suffix)
            for field in fields:
                if table is None or field not in table:
                    logger.warning("unused_col: %s is not a column of the .%s file", field, suffix)
                    continue
                table = dict(table)
                del table[field]
                setattr(self, f"{suffix}_feat", table)

    def build(self) -> list[Dataset]:
        """Split into ``[train, valid, test]`` datasets following ``eval_args`` (see ``recforge.data.split.rules``)."""
        from recforge.data.split.rules import split_dataset

        return split_dataset(self)

    def __str__(self) -> str:
        return (
            f"{self.dataset_name}: {self.user_num - 1} users, {self.item_num - 1} items, "
            f"{self.inter_num} interactions, sparsity {self.sparsity:.4%}; fields: {', '.join(self.field2type)}"
        )

    __repr__ = __str__


def dataset_dir(config: Mapping[str, Any]) -> Path:
    """The folder of the data set's files: with ``benchmark_filename``, ``<data_path>/<dataset>`` when it exists
    (it needs no ``<dataset>.inter``, as in RecBole); otherwise ``resolve_dataset_dir``'s."""
    if config.get("benchmark_filename"):
        folder = Path(config["data_path"]).expanduser() / config["dataset"]
        if folder.is_dir():
            return folder
    return resolve_dataset_dir(config["dataset"], config["data_path"])


def __getattr__(name: str) -> Any:
    """RecBole's ``recbole.data.dataset.KnowledgeBasedDataset`` path (the class is in
    ``recforge.data.knowledge_dataset``)."""
    if name == "KnowledgeBasedDataset":
        from recforge.data.knowledge_dataset import KnowledgeBasedDataset

        return KnowledgeBasedDataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["PAD", "PROCESSING_KEYS", "Dataset", "take"]
