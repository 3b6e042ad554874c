"""Fetching a known public data set (``registry.datasets.KNOWN``) into ``<data_path>/<name>/`` on first use.

The archive is downloaded and unpacked in a temporary folder beside the target, which is renamed into place
only when ``<name>.inter`` is there: an interrupted download leaves nothing behind. Set the environment
variable ``RECFORGE_NO_DOWNLOAD=1`` to never download.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from recforge.errors import DataError

logger = logging.getLogger("recforge")

TIMEOUT_SECONDS = 60


def downloads_allowed() -> bool:
    return os.environ.get("RECFORGE_NO_DOWNLOAD", "") in ("", "0")


def fetch(name: str, source: str, license_note: str, target: Path) -> Path:
    """Download the zip at ``source`` and install its atomic files as ``target`` (a folder); returns it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.download.", dir=target.parent))
    try:
        archive = staging / "archive.zip"
        logger.warning("downloading data set %s from %s (%s)", name, source, license_note)
        try:
            with urllib.request.urlopen(source, timeout=TIMEOUT_SECONDS) as response, open(archive, "wb") as out:
                shutil.copyfileobj(response, out)
        except OSError as exc:
            raise DataError(f"could not download data set '{name}' from {source}: {exc}") from None
        try:
            with zipfile.ZipFile(archive) as zipped:
                for member in zipped.namelist():
                    if member.startswith("/") or ".." in Path(member).parts:
                        raise DataError(f"the archive {source} holds an unsafe path {member!r}")
                zipped.extractall(staging / "unpacked")
        except zipfile.BadZipFile:
            raise DataError(f"the download from {source} is not a zip archive") from None
        found = sorted((staging / "unpacked").rglob(f"{name}.inter"))
        if not found:
            raise DataError(f"the archive {source} has no {name}.inter file")
        found[0].parent.rename(staging / name)
        (staging / name).rename(target)
        logger.warning("data set %s installed in %s", name, target)
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)
