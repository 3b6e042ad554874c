"""Typed, layered configuration with RecBole's key names."""

from recforge.config.config import Config, parse_command_line
from recforge.config.types import Key

__all__ = ["Config", "Key", "parse_command_line"]
