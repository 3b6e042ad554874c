"""RecBole's ``recbole.model.general_recommender``: the general (collaborative-filtering) models."""

from recforge.models.general import BPR, NCL, NGCF, SGL, ItemKNN, LightGCN, Pop, SimGCL

__all__ = ["BPR", "NCL", "NGCF", "SGL", "ItemKNN", "LightGCN", "Pop", "SimGCL"]
