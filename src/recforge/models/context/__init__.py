"""Context-aware models: pairs scored from user, item and interaction feature fields (RecBole's
``context_aware_recommender`` family), trained on labelled rows."""

from recforge.models.context.attention import AutoInt, FiGNN
from recforge.models.context.base import ContextRecommender
from recforge.models.context.cross import DCN, DCNV2
from recforge.models.context.deep import FNN, WideDeep
from recforge.models.context.dssm import DSSM
from recforge.models.context.eulernet import EulerNet
from recforge.models.context.factorization import FM, LR, NFM, DeepFM
from recforge.models.context.interaction import AFM, FFM, PNN, FwFM
from recforge.models.context.kd_dagfm import KD_DAGFM
from recforge.models.context.xdeepfm import xDeepFM

__all__ = [
    "AFM",
    "DCN",
    "DCNV2",
    "DSSM",
    "FFM",
    "FM",
    "FNN",
    "KD_DAGFM",
    "LR",
    "NFM",
    "PNN",
    "AutoInt",
    "ContextRecommender",
    "DeepFM",
    "EulerNet",
    "FiGNN",
    "FwFM",
    "WideDeep",
    "xDeepFM",
]
