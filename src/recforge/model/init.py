"""RecBole's ``recbole.model.init``."""

from recforge.models.init import xavier_normal_initialization, xavier_uniform_initialization

__all__ = ["xavier_normal_initialization", "xavier_uniform_initialization"]
