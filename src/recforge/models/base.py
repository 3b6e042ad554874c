"""The model contract (RecBole's ``AbstractRecommender``).

A model is an ``nn.Module`` built from ``(config, dataset)`` that scores users against items:

- ``calculate_loss(interaction)`` -> a scalar tensor, or a tuple of scalar tensors for several losses
  (the Trainer sums a tuple unless an objective trains the parts separately);
- ``predict(interaction)`` -> scores [B] of the pairs ``(interaction[USER_ID], interaction[ITEM_ID])``;
- ``full_sort_predict(interaction)`` -> scores [B, n_items] of the users ``interaction[USER_ID]`` against
  every item id (column 0 is padding and is masked by the evaluator).

Class attributes declare what the rest of the framework needs to know:
``input_type`` (what training batches hold), ``type`` (general, knowledge, ...), ``trainable`` (False for
models fitted in one pass from counts, such as Pop), ``hyper_parameters`` (the config keys the model adds,
with types and defaults; None, the default, means the model declares nothing and reads free keys from the
config as a RecBole model does), ``trainer`` (the name of the trainer that trains it; ``get_trainer`` also
finds a registered ``<Model>Trainer``) and ``loss_reductions`` (how each loss is reduced over a batch's rows,
for distributed training; see below).

Building (``recforge.models.building.create_model`` builds each model once):

- ``__init__(config, dataset)`` receives the training split's ``Dataset``: a loader given instead (RecBole builds
  models from ``train_data``) is replaced by its ``.dataset`` before ``__init__`` runs (``training_dataset``). Keep
  what the model needs from it, not the data set: a model is saved and served without its data.
- Allocate parameters and every tensor whose size grows with a setting through torch's factories (``nn.Embedding``,
  ``nn.Linear``, ``torch.empty`` / ``zeros`` / ``randn`` ...): ``create_model`` counts each such allocation before
  it happens, so an impossible size is one clear error instead of an out-of-memory kill. Tensors computed from the
  data (graphs, NumPy arrays) are counted once the model is built.
- Draw random numbers in ``__init__`` only from torch's global generator (or a generator seeded from the config),
  in a fixed order: a seeded build gives the same weights bit for bit.
- Register what is rebuilt from the data as buffers with ``persistent=False``; the state dict holds trained state.
- Refuse an invalid setting with ``ConfigError`` naming its config key.

Several processes train on slices of each batch and DDP averages their gradients. A loss that is a mean over
the batch's rows is then exact (each rank's is weighted by its slice's share of the batch); a loss that is a sum
over rows must be declared, ``loss_reductions = {"calculate_loss": "sum"}`` (or a tuple, one entry per part of a
tuple loss: "mean" or "sum"), and is then exact too. Terms that are neither (a norm of a whole batch's
embeddings, in-batch negatives, batch normalisation) follow one process only approximately.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from recforge.config.types import Key
from recforge.utils.enum_type import InputType, ModelType


def training_dataset(data: Any) -> Any:
    """The data set of ``data``: a loader's ``.dataset``, else ``data`` itself."""
    return getattr(data, "dataset", data)


class RecommenderType(type):
    """The metaclass of models: ``Model(config, data, ...)`` runs ``__init__(config, training_dataset(data), ...)``,
    so every constructor receives the data set, also when it was given a loader."""

    def __call__(cls, config: Mapping[str, Any], dataset: Any, *args: Any, **kwargs: Any) -> Any:
        return super().__call__(config, training_dataset(dataset), *args, **kwargs)


class Recommender(nn.Module, metaclass=RecommenderType):
    """Base class of every model. Subclasses set the class attributes and implement the three methods."""

    input_type: ClassVar[InputType] = InputType.PAIRWISE
    type: ClassVar[ModelType] = ModelType.GENERAL
    trainable: ClassVar[bool] = True
    hyper_parameters: ClassVar[tuple[Key, ...] | None] = None
    trainer: ClassVar[str] = "Trainer"
    resizable_buffers: ClassVar[tuple[str, ...]] = ()
    loss_reductions: ClassVar[Mapping[str, str | tuple[str, ...]]] = {}  # loss method -> "mean" / "sum" per part

    def __init__(self, config: Mapping[str, Any], dataset) -> None:
        """``dataset``: the training split's data set (``train_data.dataset``; see ``RecommenderType``)."""
        super().__init__()
        self.config = config
        self.USER_ID: str = config["USER_ID_FIELD"]
        self.ITEM_ID: str = config["ITEM_ID_FIELD"]
        self.NEG_ITEM_ID: str = config["NEG_PREFIX"] + self.ITEM_ID
        self.n_users: int = dataset.user_num
        self.n_items: int = dataset.item_num
        self.device = torch.device(config["device"])

    def calculate_loss(self, interaction) -> torch.Tensor | tuple[torch.Tensor, ...]:
        raise NotImplementedError(f"{type(self).__name__} has no training loss")

    def predict(self, interaction) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement predict")

    def full_sort_predict(self, interaction) -> torch.Tensor:
        """Scores [B, n_items], a fresh tensor the evaluator may modify in place.

        The default scores every item with ``predict`` (slow but always available).
        """
        users = interaction[self.USER_ID]
        items = torch.arange(self.n_items, device=users.device)
        pairs = {
            self.USER_ID: users.repeat_interleave(self.n_items),
            self.ITEM_ID: items.repeat(len(users)),
        }
        from recforge.data.interaction import Interaction

        return self.predict(Interaction(pairs)).view(len(users), self.n_items)

    def on_epoch_start(self, epoch: int) -> None:
        """Work before each training epoch (e.g. resampling augmented graph views). The trainer calls it under
        ``torch.no_grad()``; randomness must come from torch's global generator, which checkpoints restore, so
        that a resumed run draws exactly what an uninterrupted one would. The default does nothing."""

    def fit_statistics(self, train_dataset) -> None:
        """One-pass fitting of non-trainable models (``trainable = False``) from the training split."""
        raise NotImplementedError(f"{type(self).__name__} is trainable; it has no one-pass fit")

    @property
    def sparse_embeddings(self) -> bool:
        """Whether embeddings should produce sparse gradients (the learner is sparse_adam)."""
        return self.config["learner"] == "sparse_adam"

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Buffers whose size is only known after fitting (listed in resizable_buffers) take the saved shape.
        for name in self.resizable_buffers:
            saved = state_dict.get(prefix + name)
            current = self._buffers.get(name)
            if saved is not None and current is not None and saved.shape != current.shape:
                self._buffers[name] = torch.empty(saved.shape, dtype=saved.dtype, device=current.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def __str__(self) -> str:
        params = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return f"{super().__str__()}\nTrainable parameters: {params}"


class GeneralRecommender(Recommender):
    """Collaborative-filtering models that use user and item ids only."""

    type = ModelType.GENERAL
