"""Typed, layered configuration with RecBole's key names."""

from recforge.config.config import Config
from recforge.config.sources import parse_command_line
from recforge.config.types import Key

__all__ = ["Config", "Key", "parse_command_line"]
