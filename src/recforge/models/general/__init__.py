"""General (collaborative-filtering) models: user and item ids only."""

from recforge.models.general.bpr import BPR
from recforge.models.general.itemknn import ItemKNN
from recforge.models.general.lightgcn import LightGCN
from recforge.models.general.ncl import NCL
from recforge.models.general.ngcf import NGCF
from recforge.models.general.pop import Pop
from recforge.models.general.sgl import SGL
from recforge.models.general.simgcl import SimGCL

__all__ = ["BPR", "NCL", "NGCF", "SGL", "ItemKNN", "LightGCN", "Pop", "SimGCL"]
