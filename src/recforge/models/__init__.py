"""Models: the contract and the lookup of models by name.

The built-in models live in ``general``, ``knowledge``, ``context`` and ``tree``; they are registered by the
catalog (``recforge.registry.catalog``) and imported when first looked up, not when this package is imported.
"""

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
