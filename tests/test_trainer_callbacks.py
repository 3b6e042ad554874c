"""Built-in callbacks, learning-rate schedules, gradient accumulation, and subclasses that keep them working."""

import json

import pytest
import torch

from conftest import tiny_args, tiny_config
from recforge import create_dataset, data_preparation, get_model_class, init_seed
from recforge.cli import main
from recforge.trainer import Callback, Trainer


def build(tiny_path, run="run", **overrides):
    values = {"epochs": 4, "learning_rate": 0.05, "train_batch_size": 6, **overrides}
    config = tiny_config(tiny_path, "BPR", checkpoint_dir=str(tiny_path / "saved"), **values)
    init_seed(config["seed"])
    train, valid, test = data_preparation(config, create_dataset(config))
    init_seed(config["seed"])
    model = get_model_class("BPR")(config, train.dataset)
    return Trainer(config, model, run_dir=tiny_path / run), train, valid, test


def history(tiny_path, run="run"):
    return [json.loads(line) for line in (tiny_path / run / "history.jsonl").read_text().splitlines()]


def test_events_fire_in_order(tiny_path):
    class Recorder(Callback):
        def __init__(self):
            self.events = []

        def on_fit_start(self, trainer):
            self.events.append("fit_start")

        def on_epoch_start(self, trainer, epoch):
            self.events.append(f"epoch_start {epoch}")

        def on_train_end(self, trainer, epoch, loss):
            self.events.append(f"train_end {epoch}")

        def on_validation_end(self, trainer, epoch, score, result, improved):
            self.events.append(f"validation_end {epoch}")

        def on_epoch_end(self, trainer, epoch):
            self.events.append(f"epoch_end {epoch} start_epoch={trainer.start_epoch}")

        def on_checkpoint_save(self, trainer, kind, path):
            self.events.append(f"save {kind}")

        def on_fit_end(self, trainer):
            self.events.append("fit_end")

    recorder = Recorder()
    trainer, train, valid, _ = build(tiny_path, epochs=2, eval_step=2)
    trainer.callbacks.append(recorder)
    trainer.fit(train, valid, verbose=False)
    # The checkpoint writer runs after every callback: an epoch's checkpoint holds the state callbacks reached in it.
    assert recorder.events == [
        "fit_start",
        "save last",
        "epoch_start 0",
        "train_end 0",
        "epoch_end 0 start_epoch=1",
        "save last",
        "epoch_start 1",
        "train_end 1",
        "validation_end 1",
        "epoch_end 1 start_epoch=2",
        "save last",
        "save best",
        "fit_end",
    ]


class EpochCounter(Callback):
    """A user callback with state: the number of epochs it has seen end."""

    def __init__(self):
        self.count = 0

    def on_epoch_end(self, trainer, epoch):
        self.count += 1

    def state_dict(self):
        return {"count": self.count}

    def load_state_dict(self, state):
        self.count = state["count"]


@pytest.mark.parametrize("tensorboard", [(False, False), (False, True), (True, False)], ids=str)
def test_a_callback_resumes_with_the_state_of_the_last_epoch(tiny_path, tensorboard):
    """Checkpoints are written after user callbacks (last.pth after epoch 1 holds count 2, not 1), and callback
    states are keyed by name, so toggling tensorboard on resume moves no state."""
    pytest.importorskip("tensorboard")
    before, after = tensorboard
    trainer, train, valid, _ = build(tiny_path, epochs=2, tensorboard=before)
    trainer.add_callback(EpochCounter())
    trainer.fit(train, valid, verbose=False)
    last = tiny_path / "run" / "checkpoints" / "last.pth"
    assert torch.load(last, weights_only=True)["callbacks"]["EpochCounter"] == {"count": 2}
    resumed, train, valid, _ = build(tiny_path, run="again", epochs=3, tensorboard=after)
    counter = EpochCounter()
    resumed.add_callback(counter)
    resumed.resume_checkpoint(last)
    assert counter.count == 2
    resumed.fit(train, valid, verbose=False)
    assert counter.count == 3


def test_a_callback_added_after_resume_gets_its_state_and_old_checkpoints_load(tiny_path):
    trainer, train, valid, _ = build(tiny_path, epochs=1)
    trainer.add_callback(EpochCounter())
    trainer.fit(train, valid, verbose=False)
    state = torch.load(tiny_path / "run" / "checkpoints" / "last.pth", weights_only=True)
    # The layout before names: "<position>:<class>".
    state["callbacks"] = {f"{i}:{k}": v for i, (k, v) in enumerate(state["callbacks"].items())}
    old = tiny_path / "old.pth"
    torch.save(state, old)
    resumed, _, _, _ = build(tiny_path, run="again", epochs=2)
    resumed.resume_checkpoint(old)
    counter = EpochCounter()
    resumed.add_callback(counter)  # a RecBole-style trainer gets its callbacks after it is built
    assert counter.count == 1


def test_run_log_records_every_epoch(tiny_path):
    trainer, train, valid, _ = build(tiny_path, eval_step=2)
    trainer.fit(train, valid, verbose=False)
    records = history(tiny_path)
    assert [r["epoch"] for r in records] == [0, 1, 2, 3]
    assert [r["loss"] for r in records] == [trainer.train_loss_dict[e] for e in range(4)]
    assert "valid_score" not in records[0] and records[1]["valid_result"]["recall@3"] >= 0
    assert records[0]["lr"] == {"main": 0.05} and records[0]["train_seconds"] > 0


def test_tensorboard_scalars(tiny_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trainer, train, valid, _ = build(tiny_path, epochs=2, tensorboard=True)
    trainer.fit(train, valid, verbose=False)
    events = EventAccumulator(str(tiny_path / "run" / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "lr/main", "valid/recall@3", "valid/ndcg@2"} <= tags
    assert [e.step for e in events.Scalars("train/loss")] == [0, 1]


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ({"name": "step", "step_size": 2, "gamma": 0.5}, [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]),
        ({"name": "multistep", "milestones": [1, 4], "gamma": 0.1}, [1.0, 0.1, 0.1, 0.1, 0.01, 0.01]),
        ({"name": "exponential", "gamma": 0.5}, [1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125]),
        ({"name": "constant", "warmup_epochs": 3, "warmup_start_factor": 0.25}, [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]),
        (
            {"name": "step", "step_size": 1, "gamma": 0.5, "warmup_epochs": 2, "warmup_start_factor": 0.5},
            [0.5, 0.75, 1.0, 0.5, 0.25, 0.125],
        ),
        ({"name": "cosine", "T_max": 4, "eta_min": 0.0}, [1.0, 0.8535534, 0.5, 0.1464466, 0.0, 0.1464466]),
    ],
)
def test_learning_rate_schedules(tiny_path, schedule, expected):
    trainer, train, valid, _ = build(tiny_path, epochs=6, learning_rate=1.0, learner="sgd", lr_scheduler=schedule)
    trainer.fit(train, valid, verbose=False)
    assert [r["lr"]["main"] for r in history(tiny_path)] == pytest.approx(expected)


def test_plateau_halves_after_patience(tiny_path):
    class Flat(Trainer):
        def _valid_epoch(self, valid_data, show_progress=False):
            return 0.5, {"recall@3": 0.5}

    config = tiny_config(
        tiny_path,
        "BPR",
        epochs=5,
        learning_rate=1.0,
        learner="sgd",
        stopping_step=10,
        lr_scheduler={"name": "plateau", "patience": 1, "factor": 0.5},
        checkpoint_dir=str(tiny_path / "saved"),
    )
    train, valid, _ = data_preparation(config, create_dataset(config))
    trainer = Flat(config, get_model_class("BPR")(config, train.dataset), run_dir=tiny_path / "run")
    trainer.fit(train, valid, verbose=False)
    # 0.5 first (best), then no improvement (threshold 1e-4, relative): bad epochs 1, 2 -> halve after epoch 2.
    assert [r["lr"]["main"] for r in history(tiny_path)] == [1.0, 1.0, 1.0, 0.5, 0.5]


def test_gradient_accumulation_equals_a_larger_batch(tiny_path):
    accumulated, train_a, _, _ = build(
        tiny_path, "a", train_batch_size=3, gradient_accumulation_steps=2, learner="sgd", learning_rate=0.5
    )
    larger, train_b, _, _ = build(tiny_path, "b", train_batch_size=6, learner="sgd", learning_rate=0.5)
    accumulated._train_epoch(train_a, 0)
    larger._train_epoch(train_b, 0)
    for a, b in zip(accumulated.model.parameters(), larger.model.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    steps = []
    accumulated.optimizer.register_step_post_hook(lambda *args: steps.append(1))
    accumulated._train_epoch(train_a, 1)
    assert len(steps) == 2  # 12 interactions, batches of 3, groups of 2 batches


def test_subclass_overriding_train_epoch_keeps_the_machinery(tiny_path):
    class Doubled(Trainer):
        """Two passes per epoch; checkpoints, early stopping and progress must keep working."""

        def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
            first = super()._train_epoch(train_data, epoch_idx, show_progress=show_progress)
            second = super()._train_epoch(train_data, epoch_idx, show_progress=show_progress)
            return first, second

        def _valid_epoch(self, valid_data, show_progress=False):
            return 1.0 / (self.start_epoch + 1), {"recall@3": 1.0 / (self.start_epoch + 1)}  # always worse

    config = tiny_config(tiny_path, "BPR", epochs=20, stopping_step=2, checkpoint_dir=str(tiny_path / "saved"))
    train, valid, _ = data_preparation(config, create_dataset(config))
    trainer = Doubled(config, get_model_class("BPR")(config, train.dataset), run_dir=tiny_path / "run")
    trainer.fit(train, valid, verbose=False, show_progress=True)
    assert trainer.start_epoch == 4  # epoch 0 best, then 3 worse validations > stopping_step
    assert trainer.checkpoint_path("last").is_file() and trainer.saved_model_file.is_file()
    assert torch.load(trainer.saved_model_file, weights_only=True)["epoch"] == 0
    assert len(history(tiny_path)) == 4 and isinstance(trainer.train_loss_dict[0], float)


def test_cli_interrupt_and_resume(tiny_path, capsys, monkeypatch):
    args = [*tiny_args(tiny_path, "BPR"), "--epochs", "4", "--train_batch_size", "5"]
    assert main([*args, "--checkpoint_dir", str(tiny_path / "straight")]) == 0
    (straight,) = (tiny_path / "straight").iterdir()

    original = Trainer._train_epoch

    def interrupt_at_2(self, train_data, epoch_idx, *a, **k):
        if epoch_idx == 2:
            raise KeyboardInterrupt
        return original(self, train_data, epoch_idx, *a, **k)

    monkeypatch.setattr(Trainer, "_train_epoch", interrupt_at_2)
    capsys.readouterr()
    assert main([*args, "--checkpoint_dir", str(tiny_path / "stopped")]) == 130
    err = capsys.readouterr().err
    (stopped,) = (tiny_path / "stopped").iterdir()
    last = stopped / "checkpoints" / "last.pth"
    assert "training interrupted after epoch 1 completed" in err and f"recforge run --resume {last}" in err
    monkeypatch.undo()
    assert main(["run", "--resume", str(last), "--quiet"]) == 0  # the config comes from the checkpoint
    assert [p.name for p in (tiny_path / "stopped").iterdir()] == [stopped.name]  # same run folder
    done = json.loads((stopped / "metrics.json").read_text())
    reference = json.loads((straight / "metrics.json").read_text())
    assert done["test_result"] == reference["test_result"]
    assert done["train_loss"] == reference["train_loss"] and done["epochs_run"] == 4


@pytest.mark.parametrize("model", ["BPR", "Pop"])
def test_run_passes_callbacks_to_the_trainer(tiny_path, model):
    import recforge

    class Scores(Callback):
        def __init__(self):
            self.scores = []

        def on_validation_end(self, trainer, epoch, score, result, improved):
            self.scores.append((epoch, score))

    scores = Scores()
    values = dict(tiny_config(tiny_path, model, epochs=3).final_config_dict)
    out = recforge.run(model, "tiny", config_dict=values, saved=False, callbacks=[scores], verbose=False)
    epochs = 3 if model == "BPR" else 1
    assert [epoch for epoch, _ in scores.scores] == list(range(epochs))
    assert out["best_valid_score"] == max(score for _, score in scores.scores)
