"""Where data sets come from: ``<data_path>/<name>/`` first, then the data sets bundled in the package.

A bundled data set is a folder ``recforge/datasets/<name>/`` with the atomic files, a ``<name>.yaml`` of
config defaults for it, and its license. Known public data sets that may not be bundled are listed in
``KNOWN`` with their source and the config defaults RecBole uses for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from recforge.errors import DataError, did_you_mean

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
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return dict(KNOWN.get(name, {}).get("defaults", {}))


def find_datasets(data_path: str | Path) -> list[str]:
    """Names of the data sets found under ``data_path`` (folders ``<name>/<name>.inter``)."""
    root = Path(data_path)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / f"{p.name}.inter").is_file())


def resolve_dataset_dir(name: str, data_path: str | Path) -> Path:
    """The folder holding ``<name>.inter``: ``<data_path>/<name>`` if it exists, else the bundled copy, else
    (for a data set in ``KNOWN``) a fresh download into ``<data_path>/<name>``.

    Raises DataError naming the places looked at and what is available.
    """
    candidate = Path(data_path).expanduser() / name
    if (candidate / f"{name}.inter").is_file():
        return candidate
    bundled = BUNDLED_ROOT / name
    if (bundled / f"{name}.inter").is_file():
        return bundled
    if candidate.is_dir():
        raise DataError(f"{candidate / (name + '.inter')}: file not found (every data set needs a .inter file)")
    if name in KNOWN:
        from recforge.data.download import downloads_allowed, fetch

        known = KNOWN[name]
        manual = (
            f"{name} cannot be bundled ({known['license']}); download {known['source']} and unpack it so "
            f"that {candidate / (name + '.inter')} exists, or point data_path at a folder that holds {name}/"
        )
        if not downloads_allowed():
            raise DataError(f"data set '{name}' not found in {candidate.resolve()}: {manual}")
        try:
            return fetch(name, known["source"], known["license"], candidate)
        except DataError as exc:
            raise DataError(f"{exc}; {manual}") from None
    available = sorted(set(find_datasets(data_path)) | set(bundled_datasets()) | set(KNOWN))
    raise DataError(
        f"data set '{name}' not found{did_you_mean(name, available)}: no folder {candidate.resolve()} and no "
        f"bundled data set of that name; available: {', '.join(available)}"
    )
