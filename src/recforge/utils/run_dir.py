"""Run folders: ``<checkpoint_dir>/<Model>-<dataset>-<YYYYmmdd-HHMMSS>[-n]/``.

A run folder holds ``config.yaml`` (the resolved config), ``run.log``, ``metrics.json`` and
``checkpoints/{best,last}.pth``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def create_run_dir(config: Mapping[str, Any]) -> Path:
    """Create and return a new, empty run folder for ``config`` (a numeric suffix avoids collisions)."""
    root = Path(config["checkpoint_dir"]).expanduser()
    stem = f"{config['model']}-{config['dataset']}-{time.strftime('%Y%m%d-%H%M%S')}"
    for n in range(1000):
        path = root / (stem if n == 0 else f"{stem}-{n}")
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a new run folder under {root}")
