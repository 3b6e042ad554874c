"""RecBole's evaluation semantics in the corners: repeat consumption, batch sizes with several negatives,
``epochs: 0``, and ``evaluate(model_file=..., load_best_model=False)``."""

from __future__ import annotations

import logging

import pytest
import torch

from conftest import tiny_config, write_atomic
from recforge import Config, create_dataset, data_preparation, get_model_class
from recforge.trainer import Trainer

# u1 consumes i1 again in its test interaction (repeat consumption); u2 and u3 do not repeat.
REPEAT = [
    ("u1", "i1", 1), ("u1", "i2", 2), ("u1", "i3", 3), ("u1", "i4", 4), ("u1", "i1", 5),
    ("u2", "i2", 1), ("u2", "i3", 2), ("u2", "i4", 3), ("u2", "i5", 4), ("u2", "i6", 5),
    ("u3", "i1", 1), ("u3", "i2", 2), ("u3", "i5", 3), ("u3", "i6", 4), ("u3", "i3", 5),
]  # fmt: skip


def repeat_config(tmp_path, model="Pop", **overrides):
    write_atomic(tmp_path, "rep", "inter", ["user_id:token", "item_id:token", "timestamp:float"], REPEAT)
    values = {
        "data_path": str(tmp_path),
        "checkpoint_dir": str(tmp_path / "saved"),
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "eval_args": {"split": {"RS": [0.6, 0.2, 0.2]}, "order": "TO", "group_by": "user", "mode": "full"},
        "metrics": ["Recall", "MRR", "Hit"],
        "topk": [1, 3],
        "valid_metric": "MRR@3",
        "show_progress": False,
        **overrides,
    }
    return Config(model, "rep", config_dict=values, cmd_args=[])


def test_an_item_consumed_again_is_a_candidate_and_a_positive(tmp_path):
    config = repeat_config(tmp_path)
    train, valid, test = data_preparation(config, create_dataset(config))
    trainer = Trainer(config, get_model_class("Pop")(config, train.dataset))
    trainer.fit(train, valid, verbose=False, saved=False)
    # Training counts: i1 2, i2 3, i3 2, i4 1, i5 1, i6 0 (ties: lower id first).
    # u1: seen i1-i4 before the test split, positive i1 -> masked i2, i3, i4; ranking i1, i5, i6: i1 first.
    # u2: seen i2-i5, positive i6 -> ranking i1, i6: rank 2.  u3: seen i1, i2, i5, i6, positive i3 -> i3, i4: 1.
    result = trainer.evaluate(test)
    assert result["mrr@3"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert result["recall@1"] == pytest.approx(2 / 3) and result["hit@3"] == 1.0
    (_, history, positive_rows, positive_items), *_ = list(test)
    masked = set(zip(history[0].tolist(), history[1].tolist(), strict=True))
    positives = set(zip(positive_rows.tolist(), positive_items.tolist(), strict=True))
    assert masked and not masked & positives


def test_pairwise_batches_hold_batch_size_over_negatives_positives(tiny_path):
    config = tiny_config(tiny_path, "BPR", train_batch_size=8, train_neg_sample_args={"sample_num": 2})
    train, _, _ = data_preparation(config, create_dataset(config))
    batch = next(iter(train))
    assert train.step == 4 and len(train) == 3  # 12 training interactions, 8 // 2 = 4 positives per batch
    assert batch["user_id"].shape == (4,) and batch["neg_item_id"].shape == (4, 2)


@pytest.mark.parametrize("model", ["Pop", "ItemKNN", "BPR"])
def test_zero_epochs_never_crashes(tiny_path, model):
    results = {}
    for epochs in (0, 1):
        config = tiny_config(tiny_path, model, epochs=epochs, checkpoint_dir=str(tiny_path / f"e{epochs}"))
        train, valid, test = data_preparation(config, create_dataset(config))
        torch.manual_seed(0)
        trainer = Trainer(config, get_model_class(model)(config, train.dataset))
        trainer.fit(train, valid, verbose=False)
        results[epochs] = trainer.evaluate(test)
    if model != "BPR":  # fitted in one pass whatever epochs says
        assert results[0] == results[1] and results[0]["recall@3"] > 0
    else:
        assert set(results[0]) == set(results[1])  # the initial weights, evaluated


def test_model_file_is_ignored_without_load_best_model(tiny_path, caplog):
    config = tiny_config(tiny_path, "BPR", epochs=3, learning_rate=0.05)
    train, valid, test = data_preparation(config, create_dataset(config))
    model = get_model_class("BPR")(config, train.dataset)
    trainer = Trainer(config, model)
    trainer.fit(train, valid, verbose=False)
    best = trainer.run_dir / "checkpoints" / "best.pth"
    with torch.no_grad():
        model.user_embedding.weight.mul_(-1)  # the current weights are now far from the best ones
    current = trainer.evaluate(test, load_best_model=False)
    with caplog.at_level(logging.WARNING, logger="recforge"):
        ignored = trainer.evaluate(test, load_best_model=False, model_file=best)
    assert ignored == current  # RecBole reads model_file only with load_best_model=True
    assert "is ignored because load_best_model is False" in caplog.text
    assert trainer.evaluate(test, model_file=best) != current
