"""What a trained model needs besides its weights to be used: ``serving.npz`` in the run folder.

``recforge run`` writes it once, beside ``checkpoints/``: the user and item vocabularies (id -> token), each
user's items in the train / valid / test splits (sorted keys ``user * n_items + item``, for masking what a user
has seen), the training interactions per item (for a popularity fallback), and the item titles when the data
set's ``.item`` file has a title column (``*title*`` or ``name``, read from the file even when the run did not
load it). Everything is arrays (``np.load(allow_pickle=False)``); strings are UTF-8 bytes with offsets.

The file is tied to its run's checkpoints by a fingerprint (``fingerprint``: data set name, vocabulary sizes and
blake2b digests of the user and item tokens), stored in its metadata and, by ``ServingWriter``'s callback state,
in every checkpoint of the run; ``check_binding`` refuses a pair whose fingerprints differ.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recforge.data.cache.datasets import decode_strings, encode_strings
from recforge.data.columns import SeqColumn, TokenColumn
from recforge.data.files.atomic import read_atomic, read_header
from recforge.data.split.history import UserHistory
from recforge.errors import CheckpointError
from recforge.trainer.callbacks import Callback
from recforge.utils.files import atomic_write

logger = logging.getLogger("recforge")

FILE = "serving.npz"
SPLITS = ("train", "valid", "test")
KEY = "serving_fingerprint"  # of ServingWriter's state in a checkpoint's "callbacks" (found whatever its name there)


@dataclass
class ServingData:
    """The data side of a trained model (see the module docstring). ``histories[split]`` is a ``UserHistory``
    (absent for an empty split); ``titles`` is an object array by item id ('' where unknown) or None."""

    dataset: str
    uid_field: str
    iid_field: str
    user_tokens: np.ndarray
    item_tokens: np.ndarray
    histories: dict[str, UserHistory]
    item_counts: np.ndarray
    titles: np.ndarray | None = None
    title_field: str | None = None
    _user_ids: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def n_users(self) -> int:
        return len(self.user_tokens)

    @property
    def n_items(self) -> int:
        return len(self.item_tokens)

    def user_id(self, token: str) -> int | None:
        """The id of a user token, None when the user is not in the data."""
        if not self._user_ids:
            self._user_ids.update((t, i) for i, t in enumerate(self.user_tokens.tolist()) if i)
        return self._user_ids.get(token)

    @property
    def fingerprint(self) -> dict[str, Any]:
        """This data's ``fingerprint`` (what ties it to the checkpoints of its run)."""
        return fingerprint(self.dataset, self.user_tokens, self.item_tokens)

    def seen(self, splits: tuple[str, ...] = SPLITS) -> UserHistory | None:
        """The union of the listed splits' histories (None when all are empty)."""
        present = [self.histories[s] for s in splits if s in self.histories]
        if not present:
            return None
        return present[0].union(*present[1:]) if len(present) > 1 else present[0]

    @classmethod
    def from_loaders(cls, train_data, valid_data, test_data) -> ServingData:
        """Collect the serving data of a prepared run (the loaders ``data_preparation`` returned)."""
        train = train_data.dataset
        history = getattr(getattr(train_data, "sampler", None), "history", None)  # the sampler's, when it has one
        if history is None and hasattr(train, "seen_items"):  # sequential: the targets and each user's first item
            pairs = train.inter_matrix("coo")
            history = UserHistory.from_pairs(pairs.row, pairs.col, train.user_num, train.item_num)
        histories = {"train": history if history is not None else UserHistory.from_datasets(train)}
        for split, loader in (("valid", valid_data), ("test", test_data)):
            if loader is not None and loader.dataset.inter_num:  # the loaders' own, when they have them
                positives = getattr(loader, "positives", None)
                histories[split] = positives if positives is not None else UserHistory.from_datasets(loader.dataset)
        titles, title_field = _titles(train)
        return cls(
            dataset=train.dataset_name,
            uid_field=train.uid_field,
            iid_field=train.iid_field,
            user_tokens=np.asarray(train.field2id_token[train.uid_field], dtype=object),
            item_tokens=np.asarray(train.field2id_token[train.iid_field], dtype=object),
            histories=histories,
            item_counts=np.asarray(train.item_counts, dtype=np.int64),
            titles=titles,
            title_field=title_field,
        )

    def save(self, path: Path) -> Path:
        """Write atomically to ``path`` (a ``serving.npz``)."""
        arrays: dict[str, np.ndarray] = {"item_counts": self.item_counts}
        for name, tokens in (("users", self.user_tokens), ("items", self.item_tokens), ("titles", self.titles)):
            if tokens is not None:
                arrays[f"{name}_offsets"], arrays[f"{name}_bytes"] = encode_strings(tokens)
        for split, history in self.histories.items():
            arrays[f"history_{split}"] = history.keys.numpy()
        meta = {
            "dataset": self.dataset,
            "uid_field": self.uid_field,
            "iid_field": self.iid_field,
            "splits": sorted(self.histories),
            "title_field": self.title_field,
            "fingerprint": self.fingerprint,
        }
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        with atomic_write(path) as handle:
            np.savez(handle, **arrays)
        return path

    @classmethod
    def read(cls, path: Path) -> ServingData:
        """Read a ``serving.npz``; a damaged file is a CheckpointError naming it."""
        try:
            with np.load(path, allow_pickle=False) as stored:
                arrays = {name: stored[name] for name in stored.files}
            meta: dict[str, Any] = json.loads(arrays["meta"].tobytes().decode())
            users = decode_strings(arrays["users_offsets"], arrays["users_bytes"])
            items = decode_strings(arrays["items_offsets"], arrays["items_bytes"])
            titles = (
                decode_strings(arrays["titles_offsets"], arrays["titles_bytes"]) if "titles_bytes" in arrays else None
            )
            histories = {
                split: UserHistory._from_keys(arrays[f"history_{split}"], len(users), len(items))
                for split in meta["splits"]
            }
        except Exception as exc:
            raise CheckpointError(
                f"{path} cannot be read ({type(exc).__name__}: {exc}); it is written by recforge run"
            ) from None
        return cls(
            dataset=meta["dataset"],
            uid_field=meta["uid_field"],
            iid_field=meta["iid_field"],
            user_tokens=users,
            item_tokens=items,
            histories=histories,
            item_counts=arrays["item_counts"],
            titles=titles,
            title_field=meta.get("title_field"),
        )


def fingerprint(dataset: str, user_tokens, item_tokens) -> dict[str, Any]:
    """The data set name, the vocabulary sizes (with the padding id 0) and the blake2b digests of the tokens."""
    digests = []
    for tokens in (user_tokens, item_tokens):
        offsets, data = encode_strings(tokens)
        digest = hashlib.blake2b(offsets.astype("<i8").tobytes(), digest_size=16)
        digest.update(data.tobytes())
        digests.append(digest.hexdigest())
    return {
        "dataset": dataset,
        "n_users": len(user_tokens),
        "n_items": len(item_tokens),
        "users": digests[0],
        "items": digests[1],
    }


DIFFERENCES = {
    "dataset": "data set name",
    "n_users": "number of users",
    "n_items": "number of items",
    "users": "user tokens",
    "items": "item tokens",
}


def check_binding(state: dict[str, Any], data: ServingData, serving: Path, checkpoint: Path) -> None:
    """Raise CheckpointError unless ``data`` (read from ``serving``) is of the run that wrote ``checkpoint``
    (``state``): its fingerprint against the one the checkpoint holds, or, for a checkpoint written before
    fingerprints were stored, the data set name of its config."""
    saved = next(
        (value[KEY] for value in (state.get("callbacks") or {}).values() if isinstance(value, dict) and KEY in value),
        {"dataset": (state.get("config") or {}).get("dataset")},
    )
    have = data.fingerprint
    differs = [label for key, label in DIFFERENCES.items() if key in saved and saved[key] != have[key]]
    if differs:
        raise CheckpointError(
            f"{FILE} in {serving.parent} is for data set {_described(have)}, but checkpoint {checkpoint} was trained "
            f"on {_described(saved)}; they differ in {', '.join(differs)}. {FILE} is written by "
            "recforge run beside checkpoints/: use the run folder the checkpoint came from, or remove the file to "
            "rebuild it from the data set"
        )


def _described(found: dict[str, Any]) -> str:
    """``"name with N users and M items"`` (the sizes without the padding id; only the name when unknown)."""
    sizes = f" with {found['n_users'] - 1} users and {found['n_items'] - 1} items" if "n_items" in found else ""
    return f"{found['dataset']}{sizes}"


def _titles(dataset) -> tuple[np.ndarray | None, str | None]:
    """Item titles by item id from the data set's ``.item`` file (its first ``*title*`` or ``name`` column)."""
    path = Path(dataset.dataset_path) / f"{dataset.dataset_name}.item"
    if not path.is_file():
        return None, None
    separator = dataset.config["field_separator"]
    header = read_header(path, separator)
    wanted = [n for n in header if "title" in n.lower() or n.lower() == "name"]
    if not wanted or dataset.iid_field not in header or header[dataset.iid_field] != "token":
        return None, None
    title = wanted[0]
    try:
        table = read_atomic(path, [dataset.iid_field, title], (), separator, dataset.config["seq_separator"])
    except Exception as exc:  # titles are a convenience: an unreadable file only loses them
        logger.warning("item titles not stored: %s", exc)
        return None, None
    ids = table.columns[dataset.iid_field]
    tokens = ids.vocabulary[ids.codes]
    column = table.columns[title]
    if isinstance(column, SeqColumn):
        words = column.vocabulary[column.values] if column.vocabulary is not None else column.values.astype(str)
        texts = [" ".join(words[a:b]) for a, b in zip(column.offsets[:-1], column.offsets[1:], strict=True)]
    elif isinstance(column, TokenColumn):
        texts = [column.vocabulary[c] if c >= 0 else "" for c in column.codes]
    else:
        texts = ["" if np.isnan(v) else f"{v:g}" for v in column]
    position = {token: row for row, token in enumerate(tokens.tolist())}
    item_tokens = dataset.field2id_token[dataset.iid_field]
    titles = np.array(
        ["" if (row := position.get(token)) is None else texts[row] for token in item_tokens.tolist()], dtype=object
    )
    titles[0] = ""
    return titles, title


class ServingWriter(Callback):
    """A built-in callback of ``Trainer``: writes ``serving.npz`` into the run folder with the run's first checkpoint
    (so an interrupted run's checkpoints can be loaded too), from the training and validation loaders ``fit`` got
    and the test loader when it is known (``include_test``, or the first evaluation of a "test" loader, which then
    completes the file). Nothing is written with ``saved=False``; a failure to write is a warning."""

    def __init__(self) -> None:
        self.train_data: Any = None
        self.valid_data: Any = None
        self.test_data: Any = None
        self.written_splits: set[str] | None = None  # None: not written (or checked) by this run yet
        self._fingerprint: dict[str, Any] | None = None

    def include_test(self, test_data: Any) -> None:
        """Also store the users' test items (``recforge.run`` knows the test loader before training)."""
        self.test_data = test_data

    def state_dict(self) -> dict[str, Any]:
        """The fingerprint of the run's data, so that each checkpoint names the ``serving.npz`` it goes with."""
        if self._fingerprint is None and self.train_data is not None:
            train = self.train_data.dataset
            tokens = train.field2id_token
            self._fingerprint = fingerprint(train.dataset_name, tokens[train.uid_field], tokens[train.iid_field])
        return {KEY: dict(self._fingerprint)} if self._fingerprint is not None else {}

    def on_fit_start(self, trainer) -> None:
        self.train_data, self.valid_data = trainer.train_data, trainer.valid_data

    def on_checkpoint_save(self, trainer, kind: str, path: Path) -> None:
        if self.written_splits is None and trainer.saved and trainer.run_dir is not None:
            self._write(trainer.run_dir / FILE)

    def on_evaluate_end(self, trainer, phase: str | None, result: dict[str, float]) -> None:
        """A test evaluation completes a file written without the test split."""
        if phase != "test" or not trainer.saved or trainer.run_dir is None or self.train_data is None:
            return
        if self.test_data is None:
            self.test_data = trainer.evaluated_data
        if self.written_splits is None or "test" not in self.written_splits:
            self._write(trainer.run_dir / FILE, replace=True)

    def _write(self, target: Path, replace: bool = False) -> None:
        if self.train_data is None:
            return
        if target.is_file() and self.written_splits is None:  # a resumed run continuing in its folder
            self.written_splits = set(_splits_in(target))
            if not replace or "test" in self.written_splits or self.test_data is None:
                return
        data = ServingData.from_loaders(self.train_data, self.valid_data, self.test_data)
        try:
            data.save(target)
        except OSError as exc:
            logger.warning("could not write %s: %s (recforge.load will rebuild the data set)", target, exc)
        self.written_splits = set(data.histories) | ({"test"} if self.test_data is not None else set())


def _splits_in(path: Path) -> list[str]:
    """The splits a ``serving.npz`` holds ([] when it cannot be read: it is then written anew)."""
    try:
        return list(ServingData.read(path).histories)
    except CheckpointError:
        return []
