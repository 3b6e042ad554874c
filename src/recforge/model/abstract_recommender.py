"""RecBole's ``recbole.model.abstract_recommender``: the base classes of models."""

from recforge.models.base import GeneralRecommender, Recommender

AbstractRecommender = Recommender

__all__ = ["AbstractRecommender", "GeneralRecommender", "Recommender"]
