"""Where a data set is read from: ``<data_path>/<name>/`` first, then the bundled copy, then a download of a
known public data set (the catalog is ``recforge.registry.datasets``)."""

from __future__ import annotations

from pathlib import Path

from recforge.errors import DataError, did_you_mean
from recforge.registry.datasets import BUNDLED_ROOT, KNOWN, bundled_datasets


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
    root = Path(data_path).expanduser()
    if root.exists() and not root.is_dir():
        raise DataError(f"config key 'data_path': {root} is a file, not a folder; give the folder that holds {name}/")
    candidate = root / name
    inter = candidate / f"{name}.inter"
    for path in (root, candidate, inter):
        if path.is_symlink() and not path.exists():
            raise DataError(
                f"{path}: a symbolic link that leads nowhere (a loop or a missing target); fix or remove it"
            )
    if inter.exists() and not inter.is_file():
        raise DataError(f"{inter}: not a file (a folder?); the interactions must be a file")
    if inter.is_file():
        return candidate
    bundled = BUNDLED_ROOT / name
    if (bundled / f"{name}.inter").is_file():
        return bundled
    if candidate.is_dir():
        raise DataError(f"{candidate / (name + '.inter')}: file not found (every data set needs a .inter file)")
    if name in KNOWN:
        from recforge.data.files.download import downloads_allowed, fetch

        known = KNOWN[name]
        manual = (
            f"{name} cannot be bundled ({known['license']}); download {known['source']} and unpack it so "
            f"that {candidate / (name + '.inter')} exists, or point data_path at a folder that holds {name}/"
        )
        if not downloads_allowed():
            raise DataError(f"data set '{name}' not found in {_absolute(candidate)}: {manual}")
        try:
            return fetch(name, known["source"], known["license"], candidate)
        except DataError as exc:
            raise DataError(f"{exc}; {manual}") from None
    available = sorted(set(find_datasets(data_path)) | set(bundled_datasets()) | set(KNOWN))
    raise DataError(
        f"data set '{name}' not found{did_you_mean(name, available)}: no folder {_absolute(candidate)} and no "
        f"bundled data set of that name; available: {', '.join(available)}"
    )


def _absolute(path: Path) -> Path:
    """``path`` made absolute for a message, links resolved where they can be (a loop elsewhere in the path is
    left as it is rather than raised)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: Python < 3.13 on a symbolic-link loop
        return path.absolute()
