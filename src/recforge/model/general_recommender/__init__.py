"""RecBole's ``recbole.model.general_recommender``: the general (collaborative-filtering) models."""

from recforge.models.general import BPR, ItemKNN, Pop

__all__ = ["BPR", "ItemKNN", "Pop"]
