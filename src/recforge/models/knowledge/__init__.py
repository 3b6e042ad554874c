"""Knowledge-aware models: interactions plus a knowledge graph over the items (``KnowledgeBasedDataset``)."""

from recforge.models.knowledge.base import KnowledgeRecommender
from recforge.models.knowledge.cfkg import CFKG
from recforge.models.knowledge.cke import CKE
from recforge.models.knowledge.kgat import KGAT
from recforge.models.knowledge.kgcn import KGCN
from recforge.models.knowledge.kgin import KGIN
from recforge.models.knowledge.kgnnls import KGNNLS
from recforge.models.knowledge.ktup import KTUP
from recforge.models.knowledge.mcclk import MCCLK
from recforge.models.knowledge.mkr import MKR
from recforge.models.knowledge.ripplenet import RippleNet

__all__ = ["CFKG", "CKE", "KGAT", "KGCN", "KGIN", "KGNNLS", "KTUP", "MCCLK", "MKR", "KnowledgeRecommender", "RippleNet"]
