"""Knowledge-aware models: interactions plus a knowledge graph over the items (``KnowledgeBasedDataset``)."""

import importlib
import pkgutil

from recforge.models.knowledge.base import KnowledgeRecommender
from recforge.models.knowledge.cke import CKE

# While the family is being written, every module of the package registers its model on import.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["CKE", "KnowledgeRecommender"]
