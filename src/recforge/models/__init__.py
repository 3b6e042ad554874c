"""Models: the contract, the registry and the built-in models."""

from recforge.models import context, general, knowledge, tree  # noqa: F401  (registers the built-in models)
from recforge.models.base import GeneralRecommender, InputType, ModelType, Recommender
from recforge.registry import get_model, get_model_class, model_names, register_model

__all__ = [
    "GeneralRecommender",
    "InputType",
    "ModelType",
    "Recommender",
    "get_model",
    "get_model_class",
    "model_names",
    "register_model",
]
