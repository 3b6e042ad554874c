"""Exact resume: an interrupted and resumed run equals an uninterrupted one, bit for bit, on the CPU."""

import json
import logging
import os
import signal

import pytest
import torch

from conftest import tiny_config
from recforge import create_dataset, data_preparation, init_seed
from recforge.errors import TrainingInterrupted
from recforge.models.general.bpr import BPR
from recforge.trainer import Callback, Trainer


class DropoutBPR(BPR):
    """BPR with dropout on user embeddings: training draws from torch's global generator."""

    def calculate_loss(self, interaction):
        users = torch.nn.functional.dropout(self.user_embedding(interaction[self.USER_ID]), 0.5, self.training)
        pos = (users * self.item_embedding(interaction[self.ITEM_ID])).sum(-1)
        neg = (users * self.item_embedding(interaction[self.NEG_ITEM_ID])).sum(-1)
        return -torch.log(1e-10 + torch.sigmoid(pos - neg)).mean()


SETTINGS = {
    "plain": {},
    "early stopping": {"stopping_step": 1, "epochs": 8, "valid_metric": "MRR@3"},
    "step scheduler": {"lr_scheduler": {"name": "step", "step_size": 1, "gamma": 0.5}},
    "plateau scheduler": {"lr_scheduler": {"name": "plateau", "patience": 0, "factor": 0.5}},
    "cosine with warm-up": {"lr_scheduler": {"name": "cosine", "warmup_epochs": 2}},
    "bf16 and accumulation": {"precision": "bf16", "gradient_accumulation_steps": 2},
    "sgd": {"learner": "sgd", "learning_rate": 0.5},
    "dropout (global rng)": {"model": DropoutBPR},
}


def build(tiny_path, run, seed=2020, model="BPR", **overrides):
    values = {"epochs": 4, "learning_rate": 0.05, "train_batch_size": 5, "eval_args": {"order": "RO"}, **overrides}
    config = tiny_config(tiny_path, model, checkpoint_dir=str(tiny_path / "saved"), **values)
    init_seed(seed)  # a different seed for the resumed objects shows that the checkpoint restores everything
    train, valid, test = data_preparation(config, create_dataset(config))
    model = config.model_class(config, train.dataset)
    return Trainer(config, model, run_dir=tiny_path / run), train, valid, test


class InterruptAt(Callback):
    """Simulate Ctrl-C (or, with sigterm, a real SIGTERM) once ``epoch`` is complete (and checkpointed): when the
    next epoch starts."""

    def __init__(self, epoch, sigterm=False):
        self.epoch, self.sigterm = epoch, sigterm

    def on_epoch_start(self, trainer, epoch):
        if epoch == self.epoch + 1:
            if self.sigterm:
                os.kill(os.getpid(), signal.SIGTERM)
            raise KeyboardInterrupt


def summary(trainer, test):
    return {
        "weights": [p.detach().clone() for p in trainer.model.parameters()],
        "losses": dict(trainer.train_loss_dict),
        "best": (trainer.best_valid_score, trainer.best_valid_result),
        "epochs": trainer.start_epoch,
        "test": trainer.evaluate(test),
        "optimizer": trainer.optimizer.state_dict()["state"],
        "lr": trainer.optimizer.param_groups[0]["lr"],
    }


def assert_same(a, b):
    assert a["losses"] == b["losses"]
    assert a["best"] == b["best"] and a["epochs"] == b["epochs"] and a["test"] == b["test"] and a["lr"] == b["lr"]
    assert all(torch.equal(x, y) for x, y in zip(a["weights"], b["weights"], strict=True))
    for key, state in a["optimizer"].items():
        for name, value in state.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(b["optimizer"][key][name]))


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_resume_reproduces_an_uninterrupted_run(tiny_path, setting):
    overrides = SETTINGS[setting]
    straight, train, valid, test = build(tiny_path, "straight", **overrides)
    straight.fit(train, valid, verbose=False)
    expected = summary(straight, test)

    first, train, valid, _ = build(tiny_path, "interrupted", **overrides)
    first.callbacks.append(InterruptAt(1))
    with pytest.raises(TrainingInterrupted) as info:
        first.fit(train, valid, verbose=False)
    assert info.value.epoch == 1 and info.value.checkpoint == first.checkpoint_path("last")

    resumed, train, valid, test = build(tiny_path, "interrupted", seed=7, **overrides)
    resumed.resume_checkpoint(info.value.checkpoint)
    assert resumed.start_epoch == 2
    resumed.fit(train, valid, verbose=False)
    assert_same(summary(resumed, test), expected)
    history = [json.loads(line) for line in (tiny_path / "interrupted" / "history.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in history] == list(range(expected["epochs"]))
    straight_history = (tiny_path / "straight" / "history.jsonl").read_text().splitlines()
    assert [r["loss"] for r in history] == [json.loads(line)["loss"] for line in straight_history]


def test_sigterm_leaves_a_resumable_checkpoint(tiny_path):
    straight, train, valid, test = build(tiny_path, "straight")
    straight.fit(train, valid, verbose=False)
    first, train, valid, _ = build(tiny_path, "term")
    first.callbacks.append(InterruptAt(2, sigterm=True))
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(
        TrainingInterrupted,
        match="training interrupted after epoch 2 completed; resume with: recforge run --resume .*last.pth",
    ):
        first.fit(train, valid, verbose=False)
    assert signal.getsignal(signal.SIGTERM) is previous  # the handler is restored
    resumed, train, valid, test = build(tiny_path, "term", seed=3)
    resumed.resume_checkpoint(first.checkpoint_path("last"))
    resumed.fit(train, valid, verbose=False)
    assert_same(summary(resumed, test), summary(straight, test))


def test_interrupt_before_the_first_epoch_completes(tiny_path):
    class Early(Callback):
        def on_train_end(self, trainer, epoch, loss):
            raise KeyboardInterrupt

    trainer, train, valid, _ = build(tiny_path, "early")
    trainer.callbacks.append(Early())
    with pytest.raises(TrainingInterrupted) as info:
        trainer.fit(train, valid, verbose=False)
    assert info.value.epoch == -1  # the fit-start checkpoint: resuming starts from scratch, exactly
    assert torch.load(info.value.checkpoint, weights_only=True)["epoch"] == -1
    nothing, train, valid, _ = build(tiny_path, "unsaved")
    nothing.callbacks.append(Early())
    with pytest.raises(TrainingInterrupted, match="nothing was saved"):
        nothing.fit(train, valid, verbose=False, saved=False)


def test_checkpoint_holds_the_complete_state(tiny_path):
    trainer, train, valid, _ = build(tiny_path, "full", lr_scheduler={"name": "step", "step_size": 1}, precision="fp16")
    trainer.fit(train, valid, verbose=False)
    state = torch.load(trainer.checkpoint_path("last"), weights_only=True)  # no pickled classes
    assert set(state) >= {
        "model",
        "optimizers",
        "schedulers",
        "scaler",
        "rng",
        "loaders",
        "trainer",
        "callbacks",
        "config",
        "epoch",
        "model_name",
        "format",
        "version",
    }
    assert set(state["rng"]) == {"python", "numpy", "torch", "cuda"}
    assert "generator" in state["loaders"]["train"]
    assert state["optimizers"].keys() == {"main"} and state["schedulers"].keys() == {"main"}
    assert state["trainer"]["train_loss_dict"].keys() == {0, 1, 2, 3}
    assert state["config"]["lr_scheduler"]["name"] == "step"
    best = trainer.checkpoint_path("best")
    assert torch.load(best, weights_only=True)["epoch"] <= state["epoch"]


def test_resume_with_changed_keys_warns_and_names_them(tiny_path, caplog):
    trainer, train, valid, _ = build(tiny_path, "a", epochs=2)
    trainer.fit(train, valid, verbose=False)
    other, *_ = build(tiny_path, "b", epochs=5, learning_rate=0.01, train_batch_size=7)
    with caplog.at_level(logging.WARNING, logger="recforge"):
        other.resume_checkpoint(trainer.checkpoint_path("last"))
    assert "learning_rate: 0.05 -> 0.01" in caplog.text and "train_batch_size: 5 -> 7" in caplog.text
    assert "epochs" not in caplog.text  # training longer is what resuming is for


def test_resume_from_best_drops_later_history(tiny_path):
    trainer, train, valid, _ = build(tiny_path, "h", epochs=6)
    trainer.fit(train, valid, verbose=False)
    best_epoch = torch.load(trainer.checkpoint_path("best"), weights_only=True)["epoch"]
    again, train, valid, _ = build(tiny_path, "h", epochs=6)
    again.resume_checkpoint(trainer.checkpoint_path("best"))
    lines = (tiny_path / "h" / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == list(range(best_epoch + 1))
