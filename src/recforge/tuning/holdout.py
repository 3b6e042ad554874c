"""The test result of a study's best trial: computed once, after the search, from that trial's best checkpoint.

Nothing here runs during the search, so no test metric can reach the sampler, the pruner or the choice of the best
trial. The evaluation rebuilds the data exactly as the trial did (``load_data_and_model``: the checkpoint's config,
the same seed and split) and scores the checkpoint's weights on the test split, as ``recforge evaluate`` does.
The result is stored in ``best_test.json`` with the trial, its checkpoint and validation score and the time; a
later call whose best trial is the same (a finished study run again, a continued study whose best did not change)
gives the stored result and says so, without evaluating the test split again.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from recforge.quick_start import load_data_and_model
from recforge.registry import get_trainer
from recforge.tuning.results import write_json

_TIME = "%Y-%m-%d %H:%M:%S UTC"


def evaluate_checkpoint(checkpoint: str | Path, split: str = "test") -> dict[str, float] | None:
    """Score a checkpoint on its run's ``split`` ("test" or "valid"); None when that split is empty."""
    config, model, _, _, valid_data, test_data = load_data_and_model(checkpoint)
    trainer = get_trainer(config.model_class)(config, model)
    trainer.verbose = False
    return trainer.evaluate(test_data if split == "test" else valid_data, load_best_model=False)


def best_test(path: Path, record: dict[str, Any]) -> dict[str, Any]:
    """The test result of the best trial that ``record`` describes (``study_name``, ``trial``, ``checkpoint``,
    ``valid_score``): the one stored in ``path`` for that record, else computed now and stored (when the checkpoint
    is on this machine). Returns ``{"best_test_result", "best_test_note", "best_test_stored",
    "best_test_evaluated_at"}``: the result (None: see the note), whether it was stored before, and when it was
    computed."""
    stored = stored_test(path, record)
    fresh = stored is None
    if stored is None:
        checkpoint = Path(record["checkpoint"])
        if not checkpoint.is_file():  # a study shared by several machines: the best trial ran on another one
            note = f"{checkpoint} is not on this machine; where it is, run: recforge evaluate --checkpoint {checkpoint}"
            return {
                "best_test_result": None,
                "best_test_note": note,
                "best_test_stored": False,
                "best_test_evaluated_at": None,
            }
        now = datetime.now(timezone.utc).strftime(_TIME)
        stored = {**record, "test_result": evaluate_checkpoint(checkpoint, "test"), "evaluated_at": now}
        write_json(path, stored)
    result = stored["test_result"]
    return {
        "best_test_result": result,
        "best_test_note": None if result is not None else "the data set has no test split",
        "best_test_stored": not fresh,
        "best_test_evaluated_at": stored.get("evaluated_at") or _modified(path),
    }


def stored_test(path: Path, record: dict[str, Any]) -> dict[str, Any] | None:
    """``best_test.json`` when it holds the result of ``record``'s trial, checkpoint and validation score (and study,
    when it names one); None when it is missing, unreadable or of another trial."""
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # missing, or damaged: computed again and rewritten
        return None
    if not isinstance(stored, dict) or not isinstance(stored.get("test_result"), (dict, type(None))):
        return None
    same = all(stored.get(key, value if key == "study_name" else None) == value for key, value in record.items())
    return stored if same else None


def _modified(path: Path) -> str:
    """The time ``path`` was written (a best_test.json of an older recforge, without ``evaluated_at``)."""
    return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).strftime(_TIME)
