"""Gradient-boosted trees (XGBoost, LightGBM) over user, item and interaction features; trained by
``DecisionTreeTrainer``. The libraries are optional: ``pip install 'recforge[trees]'``."""

from recforge.models.tree.base import DecisionTreeRecommender
from recforge.models.tree.lightgbm import LightGBM
from recforge.models.tree.xgboost import XGBoost

__all__ = ["DecisionTreeRecommender", "LightGBM", "XGBoost"]
