"""``recforge.load``: a trained model ready to score and recommend, without re-reading the data set.

``load(checkpoint)`` reads the checkpoint (weights and config) and the run's ``serving.npz`` (vocabularies,
histories, titles; ``recforge.trainer.serving_file``). A general (collaborative-filtering) model is built from
those alone: its sizes and, for graph models, the training pairs. A model that needs more of the data set
(knowledge graph, features, trees), or a checkpoint without ``serving.npz`` beside its run folder, is rebuilt as
``load_data_and_model`` does (the processed-data cache makes that fast), which is logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from recforge.config import Config
from recforge.data.dataset import Dataset
from recforge.data.interaction import Interaction
from recforge.errors import DataError, shown
from recforge.evaluation.ranking import topk_items
from recforge.registry import get_model_class
from recforge.serving.rebuild import load_data_and_model, machine_independent
from recforge.trainer.checkpoint import load_checkpoint, load_model_state
from recforge.trainer.serving_file import FILE, SPLITS, ServingData, check_binding
from recforge.utils.enum_type import ModelType

logger = logging.getLogger("recforge")


class TrainingPairs:
    """The part of a ``Dataset`` a general model reads when it is built: sizes, vocabularies and the distinct
    training pairs (graph models build their adjacency from them); ``inter_matrix`` and ``num`` are Dataset's."""

    def __init__(self, config: Mapping[str, Any], data: ServingData) -> None:
        self.config = config
        self.dataset_name = data.dataset
        self.uid_field, self.iid_field = data.uid_field, data.iid_field
        self.field2id_token = {data.uid_field: data.user_tokens, data.iid_field: data.item_tokens}
        self.field2type = {data.uid_field: "token", data.iid_field: "token"}
        history = data.histories["train"]
        users = torch.repeat_interleave(torch.arange(history.n_users), history.lengths)
        self.inter_feat = {self.uid_field: users.numpy(), self.iid_field: history.items.numpy()}
        self.item_counts = data.item_counts
        self.user_feat = self.item_feat = None

    user_num = Dataset.user_num
    item_num = Dataset.item_num
    inter_num = Dataset.inter_num
    num = Dataset.num
    inter_matrix = Dataset.inter_matrix


class LoadedModel:
    """A trained model (eval mode, on ``device``), its config and its ``ServingData``."""

    def __init__(
        self, model: torch.nn.Module, config: Config, data: ServingData, checkpoint: Path, sequences: Any = None
    ) -> None:
        self.model, self.config, self.data, self.checkpoint = model, config, data, checkpoint
        self.sequences = sequences  # a sequential model's data set: its users' latest histories are what it scores
        self.device = next(model.parameters(), torch.empty(0)).device
        self.model.eval()

    def user_ids(self, users: Sequence[str], fallback: str | None = None) -> np.ndarray:
        """Ids of user tokens; an unknown token is a DataError unless ``fallback`` ("popular") is set (id -1)."""
        if fallback not in (None, "popular"):
            raise DataError(f"fallback must be 'popular' or None, not {fallback!r}")
        ids = np.array([self.data.user_id(str(u)) or -1 for u in users], dtype=np.int64)
        unknown = [str(u) for u, i in zip(users, ids, strict=True) if i < 0]
        if unknown and fallback is None:
            more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
            raise DataError(
                f"user {shown(unknown[0])}{more} is not in the data {self.config['model']} was trained on "
                f"({self.data.n_users - 1} users of {self.data.dataset}); check the token, or ask for the most "
                "popular items instead (fallback='popular', --fallback popular)"
            )
        return ids

    @torch.no_grad()
    def scores(self, user_ids: np.ndarray) -> torch.Tensor:
        """The model's scores [len(user_ids), n_items] of every item for known users (ids > 0); a sequential model
        scores what follows each user's latest history."""
        rows = []
        batch = int(self.config["eval_batch_size"])
        for start in range(0, len(user_ids), batch):
            users = user_ids[start : start + batch]
            if self.sequences is not None:
                interaction = self.sequences.latest_batch(users)
            else:
                interaction = Interaction({self.data.uid_field: torch.as_tensor(users)})
            scores = self.model.full_sort_predict(interaction.to(self.device))
            rows.append(scores.view(len(users), -1).float().cpu())
        return torch.cat(rows) if rows else torch.zeros(0, self.data.n_items)

    def recommend(
        self,
        users: Sequence[str],
        k: int = 10,
        include_seen: bool = False,
        exclude: str | Sequence[str] = SPLITS,
        fallback: str | None = None,
    ) -> pa.Table:
        """The top ``k`` items of each user token (all items when there are fewer), as a table (user, rank, item,
        score[, source][, title]).

        Items of the ``exclude`` splits' histories ("train", "valid", "test"; ``()`` for none) are left out unless
        ``include_seen`` (with ``exclude=("train", "valid")`` a test user's list is the run's own test-time
        ranking). An unknown user is an error, or with ``fallback="popular"`` gets the most-trained-on items: then
        a ``source`` column says "model" or "popular", and a popular row's score is its item's number of training
        interactions (ordered like the model's scores within a user's list, on another scale).
        """
        if k < 1:
            raise DataError(f"k must be at least 1, not {k}")
        splits = _splits(exclude)
        k = min(k, self.data.n_items - 1)  # more than there are: every item
        ids = self.user_ids(users, fallback)
        scores = self._masked_scores(ids, () if include_seen else splits)
        top = topk_items(scores, k) if self.config["eval_tie_break"] == "lowest_id" else torch.topk(scores, k).indices
        top_scores = scores.gather(1, top)
        mask = torch.isfinite(top_scores).numpy()  # a user with fewer than k unseen items
        rows = np.repeat(np.arange(len(users)), k).reshape(len(users), k)[mask]
        columns = {
            "user": np.asarray([str(u) for u in users], dtype=object)[rows],
            "rank": np.tile(np.arange(1, k + 1), (len(users), 1))[mask],
            "item": self.data.item_tokens[top.numpy()][mask],
            "score": top_scores.numpy()[mask].astype(np.float64),
        }
        if fallback is not None:
            columns["source"] = np.where(ids[rows] > 0, "model", "popular").astype(object)
        if self.data.titles is not None:
            columns["title"] = self.data.titles[top.numpy()][mask]
        return pa.table(
            {name: pa.array(list(values) if values.dtype == object else values) for name, values in columns.items()}
        )

    def _masked_scores(self, ids: np.ndarray, exclude: tuple[str, ...]) -> torch.Tensor:
        """[len(ids), n_items]: the model's scores of known users, the training counts for unknown ones (id -1);
        -inf for the padding item and for a known user's items of the ``exclude`` splits."""
        known = ids > 0
        scores = torch.empty(len(ids), self.data.n_items)
        scores[torch.from_numpy(known)] = self.scores(ids[known])
        scores[torch.from_numpy(~known)] = torch.from_numpy(self.data.item_counts).float()
        scores[:, 0] = -torch.inf
        seen = self.data.seen(exclude)
        if seen is not None and known.any():
            rows, items = seen.gather(torch.from_numpy(np.where(known, ids, 0)))
            rows_known = torch.from_numpy(known)[rows]
            scores.view(-1).index_fill_(0, rows[rows_known] * scores.shape[1] + items[rows_known], -torch.inf)
        return scores


def _splits(exclude: str | Sequence[str]) -> tuple[str, ...]:
    """``exclude`` as a tuple of split names (a string is one name); a name that is not a split is a DataError."""
    splits = (exclude,) if isinstance(exclude, str) else tuple(exclude)
    wrong = [str(s) for s in splits if s not in SPLITS]
    if wrong:
        raise DataError(f"exclude names splits ({', '.join(SPLITS)}), not {shown(wrong[0])}; () excludes none")
    return splits


def load(
    checkpoint: str | Path, config_dict: Mapping[str, Any] | None = None, device: str | torch.device = "cpu"
) -> LoadedModel:
    """The model of ``checkpoint`` ready to use (see the module docstring); ``config_dict`` overrides saved keys."""
    started = time.perf_counter()
    checkpoint = Path(checkpoint)
    state = load_checkpoint(checkpoint)
    base = machine_independent(state["config"])
    config = Config(config_dict={**(config_dict or {}), "device": str(device)}, cmd_args=[], base_config=base)
    model_class = get_model_class(config["model"])
    serving = _serving_file(checkpoint)
    if serving is not None and model_class.type in (ModelType.GENERAL, ModelType.TRADITIONAL):
        data = ServingData.read(serving)
        check_binding(state, data, serving, checkpoint)
        model = model_class(config, TrainingPairs(config, data))  # trained already: its weights fit
    else:
        why = "no serving.npz in its run folder" if serving is None else f"{model_class.__name__} needs the data set"
        logger.info("loading %s: %s; rebuilding the data set", checkpoint, why)
        config, model, _, train_data, valid_data, test_data = load_data_and_model(
            checkpoint, {**(config_dict or {}), "device": str(device)}
        )
        data = ServingData.from_loaders(train_data, valid_data, test_data)
    load_model_state(model, state, checkpoint)
    model.to(device)
    logger.info("loaded %s in %.2f s", checkpoint, time.perf_counter() - started)
    sequences = train_data.dataset if model_class.type == ModelType.SEQUENTIAL else None
    return LoadedModel(model, config, data, checkpoint, sequences)


def _serving_file(checkpoint: Path) -> Path | None:
    """``<run>/serving.npz`` for ``<run>/checkpoints/<name>.pth`` (or beside the checkpoint), if it exists."""
    for folder in (checkpoint.parent.parent, checkpoint.parent):
        if (folder / FILE).is_file():
            return folder / FILE
    return None
