import math
import sys

import pytest
import torch

from conftest import tiny_config
from recforge import create_dataset, data_preparation, get_model_class, init_seed
from recforge.errors import CheckpointError, TrainingError
from recforge.trainer import Trainer

L2 = math.log2


def build(config, run_dir=None):
    init_seed(config["seed"], True)
    train, valid, test = data_preparation(config, create_dataset(config))
    init_seed(config["seed"], True)
    model = get_model_class(config["model"])(config, train.dataset)
    return Trainer(config, model, run_dir=run_dir), train, valid, test


def test_pop_exact_metrics_on_a_time_ordered_split(tiny_path):
    """Hand-computed: train counts i1=4, i2=4, i3=2, i5=1, i6=1, i4=0; ties rank the lower id first.

    Test rankings after masking train+valid items: u1 [i5, i6] (positive i5 at 1), u2 [i5, i4] (i4 at 2),
    u3 [i3, i4] (i3 at 1), u4 [i6, i4] (i6 at 1). Valid: u1 [i5, i6, i4] (i4 at 3), u2 [i3, i5, i4] (i3 at 1),
    u3 [i3, i6, i4] (i6 at 2), u4 [i5, i6, i4] (i5 at 1).
    """
    trainer, train, valid, test = build(tiny_config(tiny_path, epochs=50), tiny_path / "run")
    best_score, best_result = trainer.fit(train, valid, verbose=False)
    assert len(trainer.train_loss_dict) == 1 and trainer.optimizer is None  # one pass, no optimizer
    assert best_result["recall@3"] == 1.0 and best_result["hit@1"] == 0.5
    assert best_result["mrr@3"] == pytest.approx((1 / 3 + 1 + 1 / 2 + 1) / 4)
    result = trainer.evaluate(test)
    expected = {
        "recall@1": 0.75,
        "recall@2": 1.0,
        "recall@3": 1.0,
        "mrr@1": 0.75,
        "mrr@2": 0.875,
        "mrr@3": 0.875,
        "ndcg@1": 0.75,
        "ndcg@2": (3 + 1 / L2(3)) / 4,
        "ndcg@3": (3 + 1 / L2(3)) / 4,
        "hit@1": 0.75,
        "hit@2": 1.0,
        "hit@3": 1.0,
        "precision@1": 0.75,
        "precision@2": 0.5,
        "precision@3": 1 / 3,
        "map@1": 0.75,
        "map@2": 0.875,
        "map@3": 0.875,
    }
    assert result == pytest.approx(expected)


class ScriptedTrainer(Trainer):
    """Validation returns scores from a script instead of evaluating (a subclass overriding _valid_epoch)."""

    def __init__(self, *args, scores, **kwargs):
        super().__init__(*args, **kwargs)
        self.scores = list(scores)
        self.validated_epochs = []

    def _valid_epoch(self, valid_data, show_progress=False):
        score = self.scores[len(self.validated_epochs)]
        self.validated_epochs.append(self.start_epoch)
        return score, {"recall@3": score}


def scripted(tiny_path, scores, **overrides):
    config = tiny_config(tiny_path, "BPR", **overrides)
    train, valid, _ = data_preparation(config, create_dataset(config))
    model = get_model_class("BPR")(config, train.dataset)
    return ScriptedTrainer(config, model, run_dir=tiny_path / "run", scores=scores), train, valid


def test_early_stopping_follows_recbole(tiny_path):
    trainer, train, valid = scripted(tiny_path, [0.1, 0.3, 0.2, 0.3, 0.25, 0.2, 0.1, 0.1], stopping_step=2, epochs=20)
    seen = []
    best, result = trainer.fit(train, valid, verbose=False, callback_fn=lambda e, s: seen.append((e, s)))
    # 0.3 again at epoch 3 counts as an improvement (>=); epochs 4, 5, 6 do not; 3 > stopping_step stops.
    assert seen == [(0, 0.1), (1, 0.3), (2, 0.2), (3, 0.3), (4, 0.25), (5, 0.2), (6, 0.1)]
    assert (best, result) == (0.3, {"recall@3": 0.3})
    assert trainer.start_epoch == 7 and len(trainer.train_loss_dict) == 7
    assert trainer.saved_model_file.is_file()


def test_smaller_is_better_and_eval_step(tiny_path):
    trainer, train, valid = scripted(tiny_path, [0.5, 0.4, 0.6], valid_metric_bigger=False, eval_step=2, epochs=5)
    best, _ = trainer.fit(train, valid, verbose=False)
    assert trainer.validated_epochs == [1, 3, 4]  # every 2nd epoch and the last
    assert best == 0.4


def test_no_validation_data(tiny_path):
    trainer, train, _ = scripted(tiny_path, [], epochs=2)
    assert trainer.fit(train, None, verbose=False) == (-1, None)
    assert trainer.saved_model_file.is_file()  # without validation the last epoch is the best


def test_nan_loss_names_epoch_and_batch(tiny_path):
    trainer, train, valid, _ = build(tiny_config(tiny_path, "BPR", train_batch_size=4))
    calls = []

    def loss(interaction):
        calls.append(1)
        value = trainer.model.calculate_loss(interaction)
        return value * float("nan") if len(calls) == 2 else value

    with pytest.raises(TrainingError, match="the training loss is nan at epoch 3, batch 1"):
        trainer._train_epoch(train, 3, loss_func=loss)


def test_best_model_is_what_evaluate_uses(tiny_path, caplog):
    caplog.set_level("INFO", logger="recforge")
    for saved in (True, False):
        config = tiny_config(
            tiny_path, "BPR", epochs=6, learning_rate=0.05, checkpoint_dir=str(tiny_path / f"s{saved}")
        )
        trainer, train, valid, test = build(config)
        best, best_result = trainer.fit(train, valid, verbose=False, saved=saved)
        noise = torch.Generator().manual_seed(7)
        with torch.no_grad():
            for p in trainer.model.parameters():
                p.copy_(torch.randn(p.shape, generator=noise))
        overwritten = [p.clone() for p in trainer.model.parameters()]
        assert trainer.evaluate(valid) == best_result  # the best weights, reloaded
        assert not any(torch.equal(p, q) for p, q in zip(trainer.model.parameters(), overwritten, strict=True))
        assert (tiny_path / f"s{saved}").exists() is saved  # nothing is written with saved=False
        where = "kept in memory: saved=False" if not saved else "best.pth"
        assert f"evaluating the best model of this run (epoch {trainer.best_epoch}, " in caplog.text
        assert where in caplog.text


def test_model_file_and_bad_checkpoints(tiny_path):
    config = tiny_config(tiny_path, "BPR", epochs=3)
    trainer, train, valid, test = build(config, tiny_path / "a")
    trainer.fit(train, valid, verbose=False)
    expected = trainer.evaluate(test)
    other, *_ = build(config, tiny_path / "b")
    assert other.evaluate(test, model_file=trainer.saved_model_file) == expected
    with pytest.raises(CheckpointError, match="fit has not run"):
        other.evaluate(test)
    pop, *_ = build(tiny_config(tiny_path, "Pop"), tiny_path / "c")
    with pytest.raises(CheckpointError, match="holds a BPR model, but the model to load into is Pop"):
        pop.evaluate(test, model_file=trainer.saved_model_file)
    truncated = tiny_path / "truncated.pth"
    truncated.write_bytes(trainer.saved_model_file.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="truncated.pth cannot be read"):
        other.evaluate(test, model_file=truncated)
    bigger, *_ = build(tiny_config(tiny_path, "BPR", embedding_size=8), tiny_path / "d")
    with pytest.raises(CheckpointError, match="does not fit this BPR.*size mismatch"):
        bigger.evaluate(test, model_file=trainer.saved_model_file)


def test_resume_checkpoint_restores_progress(tiny_path):
    config = tiny_config(tiny_path, "BPR", epochs=3)
    trainer, train, valid, _ = build(config, tiny_path / "a")
    trainer.fit(train, valid, verbose=False)
    resumed, *_ = build(tiny_config(tiny_path, "BPR", epochs=5), tiny_path / "b")
    resumed.resume_checkpoint(trainer.saved_model_file)
    state = torch.load(trainer.saved_model_file, weights_only=True)
    assert resumed.start_epoch == state["epoch"] + 1
    assert resumed.best_valid_score == trainer.best_valid_score
    assert resumed.optimizer.state_dict()["state"][0]["step"] == state["optimizers"]["main"]["state"][0]["step"]
    resumed.fit(train, valid, verbose=False)
    assert sorted(resumed.train_loss_dict) == list(range(5))


@pytest.mark.parametrize("learner", ["adam", "adamw", "sgd", "adagrad", "rmsprop", "sparse_adam"])
def test_learners(tiny_path, learner):
    trainer, train, *_ = build(tiny_config(tiny_path, "BPR", learner=learner, learning_rate=0.01))
    before = [p.detach().clone() for p in trainer.model.parameters()]
    loss = trainer._train_epoch(train, 0)
    assert math.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters(), strict=True))


def test_clip_grad_norm_bounds_the_step(tiny_path):
    config = tiny_config(
        tiny_path, "BPR", learner="sgd", learning_rate=1.0, clip_grad_norm={"max_norm": 1e-3}, train_batch_size=100
    )
    trainer, train, *_ = build(config)
    before = torch.cat([p.detach().flatten().clone() for p in trainer.model.parameters()])
    trainer._train_epoch(train, 0)
    after = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
    assert 0 < torch.linalg.vector_norm(after - before) <= 1e-3 + 1e-7


def test_metrics_do_not_depend_on_batch_sizes(tiny_path):
    results = []
    for eval_batch_size in (1, 3, 4096):
        for train_batch_size in (1, 7, 2048):
            config = tiny_config(
                tiny_path, "ItemKNN", k=2, eval_batch_size=eval_batch_size, train_batch_size=train_batch_size
            )
            trainer, train, valid, test = build(config)
            trainer.fit(train, valid, verbose=False, saved=False)
            results.append((trainer.evaluate(valid), trainer.evaluate(test)))
    assert all(r == results[0] for r in results)
    bpr = []
    for eval_batch_size in (1, 2, 4096):
        config = tiny_config(tiny_path, "BPR", epochs=2, eval_batch_size=eval_batch_size)
        trainer, train, valid, test = build(config)
        trainer.fit(train, valid, verbose=False, saved=False)
        bpr.append(trainer.evaluate(test))
    assert bpr[0] == bpr[1] == bpr[2]


def test_same_seed_same_run(tiny_path):
    runs = []
    for _ in range(2):
        trainer, train, valid, test = build(tiny_config(tiny_path, "BPR", epochs=3, eval_args={"order": "RO"}))
        trainer.fit(train, valid, verbose=False, saved=False)
        runs.append((trainer.train_loss_dict, trainer.evaluate(test), trainer.model.user_embedding.weight.detach()))
    assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1] and torch.equal(runs[0][2], runs[1][2])


def test_weight_decay_and_progress_bars(tiny_path, capsys, monkeypatch):
    trainer, train, valid, _ = build(tiny_config(tiny_path, "BPR", weight_decay=0.01, epochs=1))
    assert trainer.optimizer.param_groups[0]["weight_decay"] == 0.01
    monkeypatch.setattr(type(sys.stderr), "isatty", lambda self: True, raising=False)  # bars are for terminals
    trainer.fit(train, valid, verbose=False, saved=False, show_progress=True)
    trainer.evaluate(valid, show_progress=True)
    err = capsys.readouterr().err
    assert "epochs:   0%|" in err and "valid=" in err  # the epoch bar, with the latest validation score
    assert "train   0:   0%|" in err and "evaluate:   0%|" in err  # batch bars (cleared when done)
    trainer.fit(train, valid, verbose=False, saved=False, show_progress=False)
    assert capsys.readouterr().err == ""


def test_sparse_adam_is_torch_sparse_adam_row_by_row():
    """learner sparse_adam (RowAdam): torch.optim.SparseAdam's lazy Adam, computed on the gathered rows."""
    from recforge.trainer.row_adam import RowAdam

    torch.manual_seed(0)
    ours, theirs = torch.nn.Embedding(50, 8, sparse=True), torch.nn.Embedding(50, 8, sparse=True)
    theirs.load_state_dict(ours.state_dict())
    optimizers = {
        id(ours): RowAdam(ours.parameters(), lr=0.01),
        id(theirs): torch.optim.SparseAdam(theirs.parameters(), lr=0.01),
    }
    untouched = ours.weight.detach()[40:].clone()
    for _ in range(30):
        rows = torch.randint(0, 40, (20,))  # repeated rows included; rows 40-49 never appear
        weights = torch.randn(20, 8)
        for table in (ours, theirs):
            optimizers[id(table)].zero_grad()
            (table(rows) * weights).sum().backward()
            optimizers[id(table)].step()
    assert torch.allclose(ours.weight, theirs.weight, atol=1e-6)
    assert torch.equal(ours.weight.detach()[40:], untouched)  # lazy: rows outside every batch do not move
    moments = optimizers[id(ours)].state[ours.weight]["moments"]
    assert torch.allclose(moments[:, 0], optimizers[id(theirs)].state[theirs.weight]["exp_avg"].to_dense(), atol=1e-6)
    # A state saved with the moments apart (the earlier layout) continues the same way.
    state = optimizers[id(ours)].state_dict()
    split = {
        "exp_avg": moments[:, 0].clone(),
        "exp_avg_sq": moments[:, 1].clone(),
        "step": state["state"][0]["step"].clone(),
    }
    again = RowAdam([torch.nn.Parameter(ours.weight.detach().clone())], lr=0.01)
    again.load_state_dict({"state": {0: split}, "param_groups": state["param_groups"]})
    for optimizer, param in ((optimizers[id(ours)], ours.weight), (again, again.param_groups[0]["params"][0])):
        param.grad = torch.sparse_coo_tensor(torch.tensor([[3, 5]]), torch.ones(2, 8), (50, 8), check_invariants=True)
        optimizer.step()
    assert torch.equal(again.param_groups[0]["params"][0], ours.weight)
