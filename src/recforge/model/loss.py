"""RecBole's ``recbole.model.loss``."""

from recforge.models.losses import BPRLoss, EmbLoss, RegLoss

__all__ = ["BPRLoss", "EmbLoss", "RegLoss"]
