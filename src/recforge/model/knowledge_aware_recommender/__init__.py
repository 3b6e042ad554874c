"""RecBole's ``recbole.model.knowledge_aware_recommender``: the knowledge-aware models."""

from recforge.models.knowledge import CFKG, CKE, KGAT, KGCN, KGIN, KGNNLS, KTUP, MCCLK, MKR, RippleNet

__all__ = ["CFKG", "CKE", "KGAT", "KGCN", "KGIN", "KGNNLS", "KTUP", "MCCLK", "MKR", "RippleNet"]
