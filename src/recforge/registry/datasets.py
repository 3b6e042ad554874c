"""The catalog of named data sets: those bundled in the package and known public ones that may not be bundled.

A bundled data set is a folder ``recforge/datasets/<name>/`` with the atomic files, a ``<name>.yaml`` of config
defaults for it, and its license. ``KNOWN`` lists public data sets that are fetched on first use instead, with
their source and the config defaults RecBole uses for them. Where a data set is actually read from is decided in
``recforge.data.files.location``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recforge.utils.yaml_text import load_yaml

BUNDLED_ROOT = Path(__file__).resolve().parent.parent / "datasets"

# Data sets whose license forbids bundling: where to get them, and RecBole's defaults for them.
KNOWN: dict[str, dict[str, Any]] = {
    "ml-100k": {
        "source": "https://recbole.s3-accelerate.amazonaws.com/atomic/ml-100k.zip",
        "license": "MovieLens 100K: research use only, no redistribution without permission (GroupLens).",
        "defaults": {
            "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"]},
            "user_inter_num_interval": None,
            "item_inter_num_interval": None,
            "normalize_all": True,
        },
    },
}


def bundled_datasets() -> list[str]:
    """Names of the data sets shipped inside the package."""
    if not BUNDLED_ROOT.is_dir():
        return []
    return sorted(p.name for p in BUNDLED_ROOT.iterdir() if (p / f"{p.name}.inter").is_file())


def dataset_defaults(name: str) -> dict[str, Any]:
    """Config defaults of a bundled or known data set ({} for others)."""
    path = BUNDLED_ROOT / name / f"{name}.yaml"
    if path.is_file():
        return load_yaml(path.read_text(encoding="utf-8")) or {}
    return dict(KNOWN.get(name, {}).get("defaults", {}))
