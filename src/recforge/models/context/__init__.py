"""Context-aware models: pairs scored from user, item and interaction feature fields (RecBole's
``context_aware_recommender`` family), trained on labelled rows."""

from recforge.models.context.base import ContextRecommender
from recforge.models.context.cross import DCN, DCNV2
from recforge.models.context.deep import FNN, WideDeep
from recforge.models.context.factorization import FM, LR, NFM, DeepFM

__all__ = ["DCN", "DCNV2", "FM", "FNN", "LR", "NFM", "ContextRecommender", "DeepFM", "WideDeep"]
