"""Run folders from Python: resuming continues the original run (or branches without touching it), saved=False
writes nothing, files get the user's umask, and the log says things once and in order."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat

import pytest
import torch

from conftest import tiny_args, tiny_config
from recforge import create_dataset, data_preparation, init_seed
from recforge.cli import main
from recforge.errors import TrainingInterrupted
from recforge.trainer import Trainer
from test_trainer_resume import InterruptAt


def build(tiny_path, checkpoint_dir="saved", seed=2020, **overrides):
    """A trainer without an explicit run folder: it makes its own under checkpoint_dir, as a script's would."""
    values = {"epochs": 6, "learning_rate": 0.05, "train_batch_size": 5, "eval_args": {"order": "RO"}, **overrides}
    config = tiny_config(tiny_path, "BPR", checkpoint_dir=str(tiny_path / checkpoint_dir), **values)
    init_seed(seed)
    train, valid, test = data_preparation(config, create_dataset(config))
    return Trainer(config, config.model_class(config, train.dataset)), train, valid, test


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def folder_state(folder) -> dict[str, str]:
    return {str(p.relative_to(folder)): digest(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def interrupted_run(tiny_path, checkpoint_dir, at=2, **overrides):
    trainer, train, valid, _ = build(tiny_path, checkpoint_dir, **overrides)
    trainer.callbacks.append(InterruptAt(at))
    with pytest.raises(TrainingInterrupted):
        trainer.fit(train, valid, verbose=False)
    return trainer.run_dir


def test_resume_from_python_continues_the_original_run_folder(tiny_path):
    straight, train, valid, test = build(tiny_path, "straight")
    straight.fit(train, valid, verbose=False)
    expected = straight.evaluate(test)

    run_dir = interrupted_run(tiny_path, "python")
    resumed, train, valid, test = build(tiny_path, "python", seed=11)
    resumed.resume_checkpoint(run_dir / "checkpoints" / "last.pth")
    resumed.fit(train, valid, verbose=False)
    result = resumed.evaluate(test)  # the best model of the whole run, from its best.pth
    assert [p.name for p in (tiny_path / "python").iterdir()] == [run_dir.name]  # no second folder
    assert resumed.run_dir == run_dir and resumed.best_epoch == straight.best_epoch
    assert result == expected
    assert json.loads((run_dir / "metrics.json").read_text())["test_result"] == expected
    history = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in history] == list(range(straight.start_epoch))

    # `recforge run --resume` gives the same result.
    cli_run = interrupted_run(tiny_path, "cli")
    assert main(["run", "--resume", str(cli_run / "checkpoints" / "last.pth"), "--quiet"]) == 0
    assert json.loads((cli_run / "metrics.json").read_text())["test_result"] == expected


def test_each_epochs_history_line_is_written_before_its_checkpoint(tiny_path):
    """A kill between the two writes must not lose the epoch's line: the checkpoint is the commit point, a line
    ahead of it is dropped on resume (found by benchmarks/soak.py: 1 run in 23 lost its last history line)."""
    trainer, train, valid, _ = build(tiny_path, "order", epochs=3)
    lines_at_save = []
    save = trainer.save_checkpoint

    def save_and_count(kind, epoch):
        history = trainer.run_dir / "history.jsonl" if trainer.run_dir is not None else None
        count = len(history.read_text().splitlines()) if history is not None and history.is_file() else 0
        lines_at_save.append((kind, epoch, count))
        return save(kind, epoch)

    trainer.save_checkpoint = save_and_count
    trainer.fit(train, valid, verbose=False)
    assert lines_at_save == [("last", -1, 0), ("last", 0, 1), ("last", 1, 2), ("last", 2, 3)]


def test_resume_from_best_branches_and_leaves_the_source_run_untouched(tiny_path, caplog):
    straight, train, valid, _ = build(tiny_path, "source", stopping_step=20, valid_metric="MRR@3")
    straight.fit(train, valid, verbose=False)
    source = straight.run_dir
    before = folder_state(source)
    best_epoch = torch.load(source / "checkpoints" / "best.pth", weights_only=True)["epoch"]
    assert best_epoch < straight.start_epoch - 1  # the best epoch is not the last one here

    resumed, train, valid, test = build(tiny_path, "source", seed=5, stopping_step=20, valid_metric="MRR@3")
    with caplog.at_level(logging.INFO, logger="recforge"):
        resumed.resume_checkpoint(source / "checkpoints" / "best.pth")
        assert resumed.start_epoch == best_epoch + 1
        resumed.fit(train, valid, verbose=False)
    assert folder_state(source) == before  # last.pth, history, metrics of the source run unchanged
    assert resumed.run_dir != source and resumed.run_dir.parent == source.parent
    branch_history = [
        json.loads(line)["epoch"] for line in (resumed.run_dir / "history.jsonl").read_text().splitlines()
    ]
    assert branch_history == list(range(resumed.start_epoch))  # the source's epochs up to the best, then its own
    assert (resumed.run_dir / "checkpoints" / "best.pth").is_file()
    assert f"continuing {source} after epoch {best_epoch} in a new run folder" in caplog.text


def test_saved_false_writes_nothing_even_with_tensorboard(tiny_path):
    trainer, train, valid, test = build(tiny_path, "unsaved", tensorboard=True, epochs=2)
    trainer.fit(train, valid, verbose=False, saved=False)
    trainer.evaluate(test)
    assert not (tiny_path / "unsaved").exists() and trainer.run_dir is None


def test_files_get_the_users_umask(tiny_path):
    previous = os.umask(0o027)
    try:
        trainer, train, valid, test = build(tiny_path, "umask", epochs=1)
        trainer.fit(train, valid, verbose=False)
        trainer.evaluate(test)
    finally:
        os.umask(previous)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in trainer.run_dir.rglob("*") if p.is_file()}
    assert {"last.pth", "best.pth", "metrics.json", "config.yaml", "history.jsonl"} <= set(modes)
    assert set(modes.values()) == {0o640}, modes


def test_early_stopping_line_follows_the_evaluation_line(tiny_path, caplog):
    trainer, train, valid, _ = build(tiny_path, "stop", epochs=30, stopping_step=1, valid_metric="MRR@3")
    with caplog.at_level(logging.INFO, logger="recforge"):
        trainer.fit(train, valid)
    lines = [r.getMessage() for r in caplog.records]
    stop = next(i for i, line in enumerate(lines) if line.startswith("early stopping after epoch"))
    last = trainer.start_epoch - 1
    assert lines[stop].startswith(f"early stopping after epoch {last}: 2 validations without improvement")
    evaluating = next(i for i, line in enumerate(lines) if line.startswith(f"epoch {last} evaluating"))
    assert evaluating < stop and lines[stop - 1].startswith("valid result:")


def test_the_learning_rate_is_logged(tiny_path, caplog):
    single, train, valid, _ = build(tiny_path, "lr1", epochs=1)
    with caplog.at_level(logging.INFO, logger="recforge"):
        single.fit(train, valid, saved=False)
    assert ", lr: 0.05]" in caplog.text


def test_interruption_is_reported_once(tiny_path, capsys, monkeypatch):
    original = Trainer._train_epoch

    def interrupt_at_1(self, train_data, epoch_idx, *a, **k):
        if epoch_idx == 1:
            raise KeyboardInterrupt
        return original(self, train_data, epoch_idx, *a, **k)

    monkeypatch.setattr(Trainer, "_train_epoch", interrupt_at_1)
    assert main([*tiny_args(tiny_path, "BPR"), "--epochs", "3"]) == 130
    err = capsys.readouterr().err
    assert err.count("training interrupted after epoch 0 completed") == 1
    assert err.count("resume with: recforge run --resume") == 1


def test_tensorboard_has_losses_once_test_metrics_and_hyper_parameters(tiny_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trainer, train, valid, test = build(tiny_path, "tb", tensorboard=True, epochs=2)
    trainer.fit(train, valid, verbose=False)
    trainer.evaluate(test)
    scalars = EventAccumulator(str(trainer.run_dir / "tensorboard")).Reload().Tags()["scalars"]
    assert "train/loss" in scalars and "train/loss_loss" not in scalars
    assert "valid/recall@3" in scalars and "test/recall@3" in scalars and "lr/main" in scalars
    hparams = EventAccumulator(str(trainer.run_dir / "tensorboard" / "hparams")).Reload()
    assert "hparam/test/recall@3" in hparams.Tags()["scalars"]
