"""Gradient-boosted trees as recforge models: a booster of XGBoost or LightGBM over the feature rows of
``recforge.data.features.matrix``.

The model holds a live *boosting session* (the library's booster with its training and validation data) and the
booster's bytes in the library's own format, as the uint8 buffer ``booster_bytes``: checkpoints carry the booster
like any weights (loadable with ``torch.load(weights_only=True)``) and loading a checkpoint restores it. Training
is driven by ``DecisionTreeTrainer``: each epoch adds a block of rounds to the same booster (``boost``).

Scoring goes through the booster for labelled rows (``predict``) and for candidate pairs of a ranking
(``full_sort_predict`` scores each user against every item in chunks of ``SCORE_CHUNK`` rows).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np
import torch

from recforge.config.types import Bool, Int, Key
from recforge.data.columns import take
from recforge.data.features.matrix import FeatureEncoder
from recforge.errors import ConfigError
from recforge.models.base import Recommender
from recforge.utils.enum_type import InputType, ModelType

logger = logging.getLogger("recforge")

PROBE_ROWS = 8  # rows of the training split a booster's parameters are tried on

SCORE_CHUNK = 1 << 20  # candidate rows scored per booster call in full ranking

FEATURE_KEYS = (
    Key(
        "convert_token_to_onehot",
        Bool(),
        False,
        "Encode token features one column per token (ids excepted) instead of one column holding the id.",
    ),
    Key(
        "token_num_threhold",
        Int(minimum=1),
        10000,
        "Token fields with more ids than this stay one id column when convert_token_to_onehot is on (RecBole's "
        "spelling).",
    ),
)


def require_library(module: str) -> Any:
    """Import an optional boosting library, or raise a ConfigError saying which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"this model needs the '{module}' package, which is not installed; install it with "
            "pip install 'recforge[trees]' (xgboost-cpu and lightgbm)"
        ) from None


class EarlyStop:
    """The libraries' early-stopping rule applied over every round of a run, across epochs: stop when the
    validation metric has not improved for ``rounds`` rounds; ``best_round`` is the round to keep (0-based)."""

    def __init__(self, rounds: int | None) -> None:
        self.rounds = rounds
        self.best_score: float | None = None
        self.best_round = -1
        self.stopped = False

    def update(self, round_idx: int, score: float, higher_is_better: bool) -> bool:
        """Record the score after round ``round_idx``; True when training must stop."""
        better = self.best_score is None or (score > self.best_score if higher_is_better else score < self.best_score)
        if better:
            self.best_score, self.best_round = score, round_idx
        self.stopped = self.rounds is not None and round_idx - self.best_round >= self.rounds
        return self.stopped

    def state_dict(self) -> dict[str, Any]:
        return {"best_score": self.best_score, "best_round": self.best_round, "stopped": self.stopped}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best_score, self.best_round, self.stopped = state["best_score"], state["best_round"], state["stopped"]


class DecisionTreeRecommender(Recommender):
    """Base of the boosted-tree models. Subclasses name the ``library`` and implement the library calls:
    ``start``, ``_update``, ``_valid_score``, ``_predict_matrix``, ``_to_bytes``, ``_from_bytes``,
    ``_truncate`` and ``params`` / ``rounds_per_epoch`` / ``early_stopping_rounds``."""

    type = ModelType.DECISIONTREE
    input_type = InputType.POINTWISE
    trainer = "DecisionTreeTrainer"
    resizable_buffers = ("booster_bytes",)
    library: ClassVar[str] = ""

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.lib = require_library(self.library)
        self.encoder = FeatureEncoder(dataset, config)
        self.register_buffer("booster_bytes", torch.zeros(0, dtype=torch.uint8))
        self.booster: Any = None  # the library's booster; None before training
        self.rounds_done = 0
        self.last_train_loss = 0.0
        self.verbose_every = 0  # log the validation metric every N rounds when it is computed (0: never)
        self._session_open = False  # a trainable booster with its training (and validation) data

    # -- library calls (subclasses) -----------------------------------------------------------------
    params: dict[str, Any]
    rounds_per_epoch: int
    early_stopping_rounds: int | None

    def start(self, train: tuple[Any, np.ndarray], valid: tuple[Any, np.ndarray] | None) -> None:
        """Open a boosting session on the training rows ``(matrix, labels)`` (and validation rows, used for early
        stopping): the library's data (``_dtrain``, ``_dvalid``) and a trainable booster, continuing
        ``self.booster`` when there is one (a resumed run)."""
        raise NotImplementedError

    def _update(self, round_idx: int) -> None:
        raise NotImplementedError

    def _valid_score(self, round_idx: int) -> tuple[float, bool]:
        """(the validation metric the library stops on, whether higher is better) after round ``round_idx``."""
        raise NotImplementedError

    def train_loss(self) -> float:
        """The training loss the library reports for the current booster (its log loss for binary objectives)."""
        raise NotImplementedError

    def _predict_matrix(self, matrix) -> np.ndarray:
        raise NotImplementedError

    def _to_bytes(self) -> bytes:
        raise NotImplementedError

    def _from_bytes(self, data: bytes) -> Any:
        raise NotImplementedError

    def _truncate(self, rounds: int) -> None:
        raise NotImplementedError

    # -- training (called by DecisionTreeTrainer) ----------------------------------------------------
    @property
    def session_open(self) -> bool:
        return self._session_open

    params_key: ClassVar[str] = ""  # the config key of the library's parameters ("lgb_params")

    @contextmanager
    def library_errors(self) -> Iterator[None]:
        """Turn the library's refusal of its parameters (or of the data) into one ConfigError naming the key."""
        error = self._library_error()
        try:
            yield
        except error as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ConfigError(
                f"config key '{self.params_key}': {self.library} refuses the booster's parameters or data: {first}"
            ) from exc

    def _library_error(self) -> type[BaseException]:
        raise NotImplementedError

    def check_params(self, train_dataset) -> None:
        """Let the library check ``params`` by boosting one round on the first rows of the training split (the
        model's own encoding, labels 0 and 1 in turn): a refusal is a ConfigError naming ``params_key``. No
        random numbers are drawn and nothing is kept."""
        rows = take(train_dataset.inter_feat, np.arange(min(PROBE_ROWS, train_dataset.inter_num)))
        labels = (np.arange(len(next(iter(rows.values())))) % 2).astype(np.float32)
        with self.library_errors():
            self._probe(self.encoder.matrix(rows), labels)

    def _probe(self, matrix, labels: np.ndarray) -> None:
        raise NotImplementedError

    def boost(self, rounds: int, stop: EarlyStop | None = None) -> bool:
        """Add up to ``rounds`` boosting rounds; with ``stop``, score the validation rows after each round and
        cut the booster back to its best round when the rule fires (the session then ends). Returns True when
        early stopping fired. ``last_train_loss`` holds the library's training loss after the block."""
        for _ in range(rounds):
            with self.library_errors():
                self._update(self.rounds_done)
            self.rounds_done += 1
            if stop is not None and stop.rounds is not None:
                score, higher = self._valid_score(self.rounds_done - 1)
                if stop.update(self.rounds_done - 1, score, higher):
                    self.last_train_loss = float(self.train_loss())
                    self._truncate(stop.best_round + 1)
                    self.rounds_done = stop.best_round + 1
                    self.sync_bytes()
                    self.close()
                    return True
        self.last_train_loss = float(self.train_loss())
        self.sync_bytes()
        return False

    def log_round(self, round_idx: int, metrics: list[tuple[str, float]]) -> None:
        logger.info("round %d: %s", round_idx, ", ".join(f"valid {name} {value:.6f}" for name, value in metrics))

    def sync_bytes(self) -> None:
        """Copy the booster into ``booster_bytes`` (what checkpoints store)."""
        data = self._to_bytes()
        self.booster_bytes = torch.frombuffer(bytearray(data), dtype=torch.uint8).clone()

    def close(self) -> None:
        """End the session and free its training data (the booster stays)."""
        self._session_open = False
        self.__dict__.pop("_dtrain", None)
        self.__dict__.pop("_dvalid", None)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        data = bytes(self.booster_bytes.cpu().numpy().tobytes())
        self.booster = self._from_bytes(data) if data else None
        self.rounds_done = self._rounds_of_loaded() if data else 0
        self.close()  # a loaded booster continues in a new session

    def _rounds_of_loaded(self) -> int:
        raise NotImplementedError

    # -- scoring -------------------------------------------------------------------------------------
    def _require_booster(self) -> None:
        if self.booster is None:
            raise RuntimeError(f"{type(self).__name__} has no booster yet: train it (fit) or load a checkpoint")

    def predict(self, interaction) -> torch.Tensor:
        """Scores [B] of the rows of ``interaction`` (ids, plus context columns when they are features)."""
        self._require_booster()
        matrix = self.encoder.matrix(interaction.loaded() if hasattr(interaction, "loaded") else dict(interaction))
        device = interaction[self.USER_ID].device
        return torch.from_numpy(np.asarray(self._predict_matrix(matrix), dtype=np.float32)).to(device)

    def full_sort_predict(self, interaction) -> torch.Tensor:
        """Scores [B, n_items] of each user against every item id, through the booster in chunks."""
        self._require_booster()
        users = interaction[self.USER_ID]
        device = users.device
        users = users.cpu().numpy()
        items = np.arange(self.n_items)
        per_chunk = max(1, SCORE_CHUNK // self.n_items)
        out = np.empty((len(users), self.n_items), dtype=np.float32)
        for start in range(0, len(users), per_chunk):
            chunk = users[start : start + per_chunk]
            scores = self._predict_matrix(self.encoder.pairs(chunk, items))
            out[start : start + len(chunk)] = np.asarray(scores, dtype=np.float32).reshape(len(chunk), -1)
        return torch.from_numpy(out).to(device)

    def calculate_loss(self, interaction):
        raise RuntimeError(f"{type(self).__name__} is trained by boosting (DecisionTreeTrainer), not by gradients")

    def __str__(self) -> str:
        rounds = "untrained" if self.booster is None else f"{self.rounds_done} rounds"
        return f"{type(self).__name__} ({self.library}, {rounds}, {self.encoder.n_features} feature columns)"
