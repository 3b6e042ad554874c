"""The base of context-aware models (RecBole's ``ContextRecommender``): pairs scored from their feature fields.

A model sees every feature field of ``recforge.data.features.fields.feature_fields``: tokens and token sequences always,
float columns only when listed in ``numerical_features`` (RecBole's rule; its default ``[]`` leaves them out). It
implements ``logit(interaction)`` -> [B]; training minimises binary cross-entropy against ``LABEL_FIELD`` (plus
the model's ``regularisation()``), and ``predict`` is the sigmoid of the logit.
"""

from __future__ import annotations

import torch
from torch import nn

from recforge.config.types import Float, Int, Key, ListOf
from recforge.data.features.fields import FeatureField, feature_fields
from recforge.models.base import Recommender
from recforge.models.context.fields import FieldEmbedding, FieldInputs, mlp_layers
from recforge.models.init import xavier_normal_initialization
from recforge.utils.enum_type import InputType, ModelType

EMBEDDING_KEY = Key("embedding_size", Int(minimum=1), 10, "Embedding size d of every feature field.")


def mlp_keys(hidden: list[int], dropout: float) -> tuple[Key, ...]:
    """The ``mlp_hidden_size`` / ``dropout_prob`` keys with a model's defaults."""
    return (
        Key("mlp_hidden_size", ListOf(Int(minimum=1)), hidden, "Sizes of the hidden layers of the deep part."),
        Key("dropout_prob", Float(minimum=0.0, maximum=1.0), dropout, "Dropout rate before each hidden layer."),
    )


class ContextRecommender(Recommender):
    """Base of the context-aware models (see the module docstring).

    Attributes:
        inputs: gathers the fields' values of a batch.
        embedding: the fields' d-dimensional embeddings, ``embed(interaction)`` -> [B, F, d].
        first_order: the fields' scalar weights (``first_order_linear`` adds them up with a bias).
        num_feature_field: F.
    """

    type = ModelType.CONTEXT
    input_type = InputType.POINTWISE

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        self.LABEL: str = config["LABEL_FIELD"]
        self.embedding_size: int = config["embedding_size"]
        numerical = list(config["numerical_features"] or [])
        self.inputs = FieldInputs(dataset, self.select_fields(feature_fields(dataset, config, floats=numerical)))
        fields = self.inputs.fields
        dims = {f.name: dataset.num(f.name) for f in fields if f.type.startswith("token")}
        self.field_names = [f.name for f in fields]
        self.num_feature_field = len(fields)
        self.embedding = FieldEmbedding(fields, dims, self.embedding_size, seq_pool="mean")
        self.first_order = FieldEmbedding(fields, dims, 1, seq_pool="sum")
        self.first_order_bias = nn.Parameter(torch.zeros(1))
        self.loss_fn = nn.BCEWithLogitsLoss()

    def select_fields(self, fields: list[FeatureField]) -> list[FeatureField]:
        """The feature fields the model embeds, from all of them (all, unless a model says otherwise)."""
        return fields

    def build_deep_part(self, config, activation: str = "relu") -> None:
        """``mlp`` over the concatenated field embeddings (``mlp_hidden_size``, ``dropout_prob``) and
        ``deep_predict_layer`` from its last layer to one logit (``deep_logit``)."""
        hidden = config["mlp_hidden_size"]
        sizes = [self.num_feature_field * self.embedding_size, *hidden]
        self.mlp = mlp_layers(sizes, config["dropout_prob"], activation)
        self.deep_predict_layer = nn.Linear(hidden[-1], 1)

    def deep_logit(self, embeddings: torch.Tensor) -> torch.Tensor:
        """[B] logit of the deep part for [B, F, d] embeddings."""
        return self.deep_predict_layer(self.mlp(embeddings.flatten(1))).squeeze(-1)

    def embed(self, interaction) -> torch.Tensor:
        """[B, F, d] embeddings of the batch's fields."""
        return self.embedding(self.inputs(interaction))

    def first_order_linear(self, interaction) -> torch.Tensor:
        """[B] sum of the fields' first-order weights plus the bias."""
        return self.first_order(self.inputs(interaction)).sum(dim=(1, 2)) + self.first_order_bias

    def logit(self, interaction) -> torch.Tensor:
        raise NotImplementedError

    def regularisation(self) -> torch.Tensor | float:
        """A term added to the loss (none by default)."""
        return 0.0

    def calculate_loss(self, interaction) -> torch.Tensor:
        label = interaction[self.LABEL].float()
        return self.loss_fn(self.logit(interaction).float(), label) + self.regularisation()

    def predict(self, interaction) -> torch.Tensor:
        return torch.sigmoid(self.logit(interaction))

    def init_weights(self) -> None:
        """RecBole's init: Xavier-normal embeddings and linear weights, zero linear biases."""
        self.apply(xavier_normal_initialization)


def fm_interaction(embeddings: torch.Tensor, reduce_sum: bool = True) -> torch.Tensor:
    """Second-order factorisation-machine term of [B, F, d] embeddings: 0.5 * ((sum_f e)^2 - sum_f e^2), summed
    over d ([B]) or not ([B, d])."""
    square_of_sum = embeddings.sum(dim=1).pow(2)
    sum_of_square = embeddings.pow(2).sum(dim=1)
    out = 0.5 * (square_of_sum - sum_of_square)
    return out.sum(dim=1) if reduce_sum else out
