"""General (collaborative-filtering) models: user and item ids only."""

from recforge.models.general.bpr import BPR
from recforge.models.general.itemknn import ItemKNN
from recforge.models.general.pop import Pop

__all__ = ["BPR", "ItemKNN", "Pop"]
