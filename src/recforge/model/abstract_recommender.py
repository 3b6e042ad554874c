"""RecBole's ``recbole.model.abstract_recommender``: the base classes of models."""

from recforge.models.base import GeneralRecommender, Recommender

AbstractRecommender = Recommender

__all__ = ["AbstractRecommender", "GeneralRecommender", "Recommender"]


def __getattr__(name: str):
    """``SequentialRecommender`` (imported on first use)."""
    if name == "SequentialRecommender":
        from recforge.models.sequential.base import SequentialRecommender

        return SequentialRecommender
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
