"""The test result of a study's best trial: computed once, after the search, from that trial's best checkpoint.

Nothing here runs during the search, so no test metric can reach the sampler, the pruner or the choice of the best
trial. The evaluation rebuilds the data exactly as the trial did (``load_data_and_model``: the checkpoint's config,
the same seed and split) and scores the checkpoint's weights on the test split, as ``recforge evaluate`` does.
"""

from __future__ import annotations

from pathlib import Path

from recforge.quick_start import load_data_and_model
from recforge.registry import get_trainer


def evaluate_checkpoint(checkpoint: str | Path, split: str = "test") -> dict[str, float] | None:
    """Score a checkpoint on its run's ``split`` ("test" or "valid"); None when that split is empty."""
    config, model, _, _, valid_data, test_data = load_data_and_model(checkpoint)
    trainer = get_trainer(config.model_class)(config, model)
    trainer.verbose = False
    return trainer.evaluate(test_data if split == "test" else valid_data, load_best_model=False)
