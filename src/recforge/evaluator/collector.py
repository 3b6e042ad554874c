"""RecBole's ``recbole.evaluator.collector``: ``DataStruct`` and ``Collector``.

The collector ranks with recforge's evaluator (``recforge.evaluation.evaluator.Evaluator.rank``): padding
masked, top-k with recforge's tie rule (``eval_tie_break``; by default equal scores put the lower item id first),
a filler slot of a user with fewer than k candidates never a hit. GAUC's ranks come from
``recforge.evaluation.metrics.ranking_gauc_parts``. Besides RecBole's keys it stores ``rec.valid`` [U, K] (which
top-k slots hold a candidate), which the beyond-accuracy metrics read.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from recforge.evaluation import evaluator as recforge_evaluator
from recforge.evaluation import metrics as M
from recforge.evaluator.register import Register

BATCH_KEYS = ("rec.topk", "rec.meanrank", "rec.score", "rec.items", "rec.valid", "data.label")


class DataStruct:
    """Named evaluation resources (tensors, counts); ``update_tensor`` appends a batch along dim 0."""

    def __init__(self) -> None:
        self._data_dict: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        return self._data_dict[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self._data_dict[name] = value

    def __delitem__(self, name: str) -> None:
        self._data_dict.pop(name)

    def __contains__(self, key: str) -> bool:
        return key in self._data_dict

    def get(self, name: str) -> Any:
        """The resource ``name``; IndexError when nothing was stored under it."""
        if name not in self._data_dict:
            raise IndexError("Can not load the data without registration !")
        return self._data_dict[name]

    def set(self, name: str, value: Any) -> None:
        self._data_dict[name] = value

    def update_tensor(self, name: str, value: torch.Tensor) -> None:
        """Append ``value`` (a detached copy) to the tensor ``name`` along dim 0, or store it."""
        if name not in self._data_dict:
            self._data_dict[name] = value.clone().detach()
        elif not isinstance(self._data_dict[name], torch.Tensor):
            raise ValueError(f"{name} is not a tensor.")
        else:
            self._data_dict[name] = torch.cat((self._data_dict[name], value.clone().detach()), dim=0)

    def __str__(self) -> str:
        return "\nContaining:\n" + "".join(f"{key}\n" for key in self._data_dict)


def count_table(counts: np.ndarray) -> Counter:
    """RecBole's ``item_counter`` / ``user_counter`` (``{id: interactions}``, ids without any left out) from
    recforge's per-id counts."""
    ids = np.flatnonzero(counts)
    return Counter(dict(zip(ids.tolist(), np.asarray(counts)[ids].tolist(), strict=True)))


def _counts_of(dataset: Any, field: str, counter: str) -> Counter:
    """RecBole's ``dataset.<counter>`` where the dataset has it, else counted from ``inter_feat[field]``."""
    if hasattr(dataset, counter):
        return getattr(dataset, counter)
    return count_table(np.bincount(np.asarray(dataset.inter_feat[field]), minlength=dataset.num(field)))


class Collector:
    """Collects what the configured metrics need (``Register``) from the training data (``data_collect``) and
    each evaluation batch (``eval_batch_collect`` / ``eval_collect``); ``get_data_struct`` hands it over."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self.data_struct = DataStruct()
        self.register = Register(config)
        mode = config["eval_args"]["mode"]
        self.full = "full" in (mode.values() if isinstance(mode, Mapping) else [mode])
        self.topk = list(config["topk"])
        self.device = config["device"]
        self.ranker = recforge_evaluator.Evaluator([], self.topk, config["tail_ratio"], config["eval_tie_break"])

    def data_collect(self, train_data: Any) -> None:
        """Item / user id counts (padding included) and training interactions per id from ``train_data.dataset``."""
        dataset = train_data.dataset
        item_field, user_field = self.config["ITEM_ID_FIELD"], self.config["USER_ID_FIELD"]
        if self.register.need("data.num_items"):
            self.data_struct.set("data.num_items", dataset.num(item_field))
        if self.register.need("data.num_users"):
            self.data_struct.set("data.num_users", dataset.num(user_field))
        if self.register.need("data.count_items"):
            self.data_struct.set("data.count_items", _counts_of(dataset, item_field, "item_counter"))
        if self.register.need("data.count_users"):
            self.data_struct.set("data.count_users", _counts_of(dataset, user_field, "user_counter"))

    def eval_batch_collect(
        self, scores_tensor: torch.Tensor, interaction: Any, positive_u: torch.Tensor, positive_i: torch.Tensor
    ) -> None:
        """Collect one batch. Ranking: ``scores_tensor`` [B, n_items] with -inf for the items that are not
        candidates (history, unsampled items; column 0 is masked here), ``positive_u`` / ``positive_i`` the rows
        and item ids of the positives. Labelled rows: ``scores_tensor`` [B] and ``interaction[LABEL_FIELD]``."""
        need = self.register.need
        if need("rec.items") or need("rec.topk") or need("rec.meanrank"):
            scores = scores_tensor.detach().clone()  # rank masks padding in place
            top_items, hits, pos_len, valid = self.ranker.rank(scores, None, positive_u, positive_i)
            if need("rec.items"):
                self.data_struct.update_tensor("rec.items", top_items)
                self.data_struct.update_tensor("rec.valid", valid)
            if need("rec.topk"):
                self.data_struct.update_tensor("rec.topk", torch.cat((hits.int(), pos_len.int().unsqueeze(1)), dim=1))
            if need("rec.meanrank"):
                self.data_struct.update_tensor("rec.meanrank", self._mean_rank(scores, positive_u, positive_i))
        if need("rec.score"):
            self.data_struct.update_tensor("rec.score", scores_tensor)
        if need("data.label"):
            self.data_struct.update_tensor("data.label", interaction[self.config["LABEL_FIELD"]].to(self.device))

    @staticmethod
    def _mean_rank(scores: torch.Tensor, positive_u: torch.Tensor, positive_i: torch.Tensor) -> torch.Tensor:
        """RecBole's ``rec.meanrank`` [B, 3] float64: the positives' descending average rank sum, candidates,
        positives (recforge's ascending sum s becomes positives * (candidates + 1) - s)."""
        positives, candidates, rank_sum = M.ranking_gauc_parts(scores, positive_u, positive_i)
        descending = positives * (candidates + 1) - rank_sum
        return torch.from_numpy(np.stack([descending, candidates, positives], axis=1).astype(np.float64))

    def model_collect(self, model: torch.nn.Module) -> None:
        """Collect from the trained model: nothing so far (as in RecBole)."""

    def eval_collect(self, eval_pred: torch.Tensor, data_label: torch.Tensor) -> None:
        """Collect the scores and labels of models that predict everything at once."""
        if self.register.need("rec.score"):
            self.data_struct.update_tensor("rec.score", eval_pred)
        if self.register.need("data.label"):
            self.data_struct.update_tensor("data.label", data_label.to(self.device))

    def get_data_struct(self) -> DataStruct:
        """A copy of everything collected (tensors on the CPU); the batch resources are then cleared."""
        for key, value in self.data_struct._data_dict.items():
            if isinstance(value, torch.Tensor):
                self.data_struct._data_dict[key] = value.cpu()
        returned = copy.deepcopy(self.data_struct)
        for key in BATCH_KEYS:
            if key in self.data_struct:
                del self.data_struct[key]
        return returned


__all__ = ["Collector", "DataStruct"]
