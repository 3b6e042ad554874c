"""recforge tune: studies that continue, search on validation only, prune, fail per trial, and leave results that
repeat the best trial exactly."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import signal
import sys
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
import yaml

import recforge
import recforge.tuning.trial
from conftest import TINY_INTER, write_atomic
from recforge.cli import main
from recforge.trainer import Trainer
from recforge.tuning import SearchSpaceError, TuningError, read_space, tune
from recforge.tuning.holdout import evaluate_checkpoint
from recforge.tuning.study import make_pruner, masked_url
from recforge.tuning.trial import TrialReporter

SPACE = {"learning_rate": {"type": "loguniform", "low": 1e-4, "high": 0.5}, "embedding_size": [8, 32]}
INTER_HEADER = ["user_id:token", "item_id:token", "rating:float", "timestamp:float"]


def fixed(data_path):
    """BPR on 'tiny', 3 epochs, MRR@3 on validation (Recall@3 is 1 for every model there: 3 candidates are left)."""
    return {
        "data_path": str(data_path),
        "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"]},
        "eval_args": {"split": {"RS": [0.6, 0.2, 0.2]}, "order": "TO", "group_by": "user", "mode": "full"},
        "show_progress": False,
        "topk": [1, 2, 3],
        "metrics": ["Recall", "MRR"],
        "valid_metric": "MRR@3",
        "epochs": 3,
    }


def fixed_args(data_path):
    """The same settings as ``recforge`` command-line arguments."""
    args = []
    for key, value in fixed(data_path).items():
        args += [f"--{key}", value if isinstance(value, str) else json.dumps(value)]
    return args


def study(data_path, folder, space=SPACE, trials=3, **options):
    return tune("BPR", "tiny", space=space, trials=trials, study_dir=folder, config_dict=fixed(data_path), **options)


def stored_trials(folder, name="BPR-tiny", storage=None):
    return optuna.load_study(study_name=name, storage=storage or f"sqlite:///{folder / 'study.db'}").trials


def history(trial):
    return (Path(trial.user_attrs["run_dir"]) / "history.jsonl").read_text().splitlines()


@pytest.mark.slow
def test_a_stopped_study_continues_from_its_sqlite_file(tiny_path, one_thread, capsys):
    folder = tiny_path / "study"
    first = study(tiny_path, folder, trials=2)
    assert first["counts"]["TOTAL"] == 2 and (folder / "study.db").is_file()
    before = stored_trials(folder)
    again = study(tiny_path, folder, trials=4)
    after = stored_trials(folder)
    assert [t.state.name for t in after] == ["COMPLETE"] * 4 and again["counts"]["COMPLETE"] == 4
    for old, new in zip(before, after[:2], strict=True):  # the first two untouched
        assert (old.params, old.value, old.datetime_start, old.user_attrs) == (
            new.params,
            new.value,
            new.datetime_start,
            new.user_attrs,
        )
    # the continued study's sampler is seeded afresh: it does not repeat the first draws
    assert {t.params["learning_rate"] for t in after[2:]}.isdisjoint({t.params["learning_rate"] for t in before})
    # every trial is a normal run folder inside the study folder
    assert {Path(t.user_attrs["run_dir"]).parent for t in after} == {folder / "trials"}
    assert all(
        json.loads((Path(t.user_attrs["run_dir"]) / "metrics.json").read_text())["epochs_run"] == 3 for t in after
    )
    assert study(tiny_path, folder, trials=3)["stopped"] == "the study already holds 4 finished trials (asked: 3)"
    assert len(stored_trials(folder)) == 4

    # the same study with other settings: another objective is refused, other fixed keys are named in a warning
    other = {**fixed(tiny_path), "valid_metric": "MRR@2"}
    with pytest.raises(
        TuningError, match="study 'BPR-tiny' in sqlite:///.* searches valid_metric 'MRR@3', not 'MRR@2'"
    ):
        tune("BPR", "tiny", space=SPACE, trials=4, study_dir=folder, config_dict=other)
    capsys.readouterr()
    tune("BPR", "tiny", space=SPACE, trials=4, study_dir=folder, config_dict={**fixed(tiny_path), "epochs": 2})
    assert "continues with other fixed settings than it began with (epochs)" in capsys.readouterr().err


@pytest.mark.slow
def test_trials_never_evaluate_the_test_split(tiny_path, one_thread, monkeypatch):
    phases = []
    original = Trainer.evaluate

    def recording(self, eval_data, *args, **kwargs):
        if eval_data is not None:  # evaluate(None) scores nothing (a trial passes None for its test split)
            phases.append(eval_data.phase)
        return original(self, eval_data, *args, **kwargs)

    monkeypatch.setattr(Trainer, "evaluate", recording)
    result = study(tiny_path, tiny_path / "study", trials=3)
    assert phases == ["valid"] * 9 + ["test"]  # 3 trials x 3 epochs, then the best trial's checkpoint once
    for row in result["trials"]:
        assert "test_result" not in json.loads((Path(row["run_dir"]) / "metrics.json").read_text())
    best_test = json.loads((tiny_path / "study" / "best_test.json").read_text())
    assert (
        best_test["trial"] == result["best_trial"]["number"] and best_test["test_result"] == result["best_test_result"]
    )


@pytest.mark.slow
def test_the_test_data_cannot_change_the_search(tmp_path, one_thread):
    # B differs from A in the test interactions only (each user's last): same vocabulary, training and validation.
    other_test = {("u2", 5): "i5", ("u3", 5): "i4", ("u4", 5): "i4"}
    rows_b = [[u, other_test.get((u, t), i), r, t] for u, i, r, t in TINY_INTER]
    assert sum(a[1] != b[1] for a, b in zip(TINY_INTER, rows_b, strict=True)) == 3
    write_atomic(tmp_path / "a", "tiny", "inter", INTER_HEADER, [list(r) for r in TINY_INTER])
    write_atomic(tmp_path / "b", "tiny", "inter", INTER_HEADER, rows_b)
    a = study(tmp_path / "a", tmp_path / "study-a", trials=4)
    b = study(tmp_path / "b", tmp_path / "study-b", trials=4)
    assert a["best_test_result"] != b["best_test_result"]  # the test data did differ ...
    key = lambda row: (row["number"], row["state"], row["valid_score"], row["learning_rate"], row["embedding_size"])
    assert [key(r) for r in a["trials"]] == [key(r) for r in b["trials"]]  # ... and the search did not
    assert a["best_trial"]["number"] == b["best_trial"]["number"]


@pytest.mark.slow
def test_the_median_pruner_stops_a_clearly_worse_trial(tiny_path, one_thread):
    assert isinstance(make_pruner("median"), optuna.pruners.MedianPruner)  # the default
    folder = tiny_path / "study"
    folder.mkdir()
    # trials in a known order: lr 0.001 scores 0.708 at every epoch; lr 0.5 scores 0.667 after epoch 0
    queued = optuna.create_study(
        storage=f"sqlite:///{folder / 'study.db'}", study_name="BPR-tiny", direction="maximize"
    )
    queued.enqueue_trial({"learning_rate": 0.001, "embedding_size": 8})
    queued.enqueue_trial({"learning_rate": 0.5, "embedding_size": 8})
    result = study(tiny_path, folder, trials=2, pruner=optuna.pruners.MedianPruner(n_startup_trials=1))
    complete, pruned = stored_trials(folder)
    assert (complete.state.name, pruned.state.name) == ("COMPLETE", "PRUNED")
    assert pruned.user_attrs["pruned_epoch"] == 0 and pruned.intermediate_values[0] < complete.intermediate_values[0]
    assert len(history(pruned)) == 1 and len(history(complete)) == 3
    assert result["counts"]["PRUNED"] == 1 and result["best_trial"]["number"] == 0
    assert result["trials"][1]["valid_score"] == pytest.approx(8 / 12) and result["trials"][1]["epochs"] == 1


def test_the_pruner_is_not_asked_when_training_ends_anyway():
    class AlwaysPrune:
        def __init__(self):
            self.reported = []

        def report(self, value, step):
            self.reported.append((step, value))

        def should_prune(self):
            return True

    def stopped_after(epoch, epochs=3, early_stop=False):
        trainer = SimpleNamespace(should_stop=early_stop, trainable=True, epochs=epochs)
        reporter = TrialReporter(AlwaysPrune())
        reporter.on_validation_end(trainer, epoch, 0.5, {}, False)
        assert reporter.trial.reported == [(epoch, 0.5)]
        return reporter.pruned_epoch, trainer.should_stop

    assert stopped_after(1) == (1, True)
    assert stopped_after(2) == (None, False)  # the last epoch: the trial completes
    assert stopped_after(1, early_stop=True) == (None, True)  # early stopping ends it: it completes


HYPER_TEST = """\
learning_rate loguniform -8,0
# RecBole's lines; the spaces inside a value are removed as RecBole does
embedding_size choice [8, 16,32]
learner choice ['adam', 'sgd']
weight_decay uniform 0,0.1
train_batch_size quniform 2,9,3
"""


def test_recbole_hyper_test_format(tmp_path):
    path = tmp_path / "hyper.test"
    path.write_text(HYPER_TEST)
    space = read_space(path)
    assert list(space) == ["learning_rate", "embedding_size", "learner", "weight_decay", "train_batch_size"]
    lr = space["learning_rate"]
    assert (lr.kind, lr.low, lr.high, lr.line) == ("loguniform", math.exp(-8), 1.0, 1)  # bounds: exponents of e
    assert space["embedding_size"].values == (8, 16, 32) and space["learner"].values == ("adam", "sgd")
    assert (space["weight_decay"].low, space["weight_decay"].high) == (0.0, 0.1)
    assert space["train_batch_size"].grid() == [3, 6, 9]  # round(x / 3) * 3 for x in [2, 9]
    yaml_path = tmp_path / "space.yaml"  # the same space in YAML: the same entries
    yaml_path.write_text(
        f"learning_rate: {{type: loguniform, low: {math.exp(-8)!r}, high: 1.0}}\nembedding_size: [8, 16, 32]\n"
        "learner: {type: choice, values: [adam, sgd]}\nweight_decay: {type: uniform, low: 0, high: 1e-1}\n"
        "train_batch_size: {type: quniform, low: 2, high: 9, q: 3}\n"
    )
    assert {k: (p.kind, p.values, p.low, p.high, p.step) for k, p in read_space(yaml_path).items()} == {
        k: (p.kind, p.values, p.low, p.high, p.step) for k, p in space.items()
    }
    sampled = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        values = space.suggest(sampled.ask())
        assert math.exp(-8) <= values["learning_rate"] <= 1 and values["train_batch_size"] in (3, 6, 9)
        assert isinstance(values["train_batch_size"], int) and values["learner"] in ("adam", "sgd")


def test_lists_are_choices_optuna_cannot_hold_directly(tmp_path):
    space = read_space({"mlp_hidden_size": {"type": "choice", "values": [[64, 32], [16]]}})
    trial = optuna.create_study().ask()
    assert space.suggest(trial)["mlp_hidden_size"] in ([64, 32], [16])
    assert trial.params["mlp_hidden_size"] in ("[64, 32]", "[16]")  # Optuna stores the JSON text


@pytest.mark.parametrize(
    ("space", "message"),
    [
        (
            {"learning_rat": {"type": "uniform", "low": 0.1, "high": 0.2}},
            "search space (dict): 'learning_rat': not a config key of BPR (did you mean 'learning_rate'?)",
        ),
        ({"n_layers": [1, 2]}, "search space (dict): 'n_layers': not a config key of BPR"),
        (
            {"learning_rate": {"type": "uniform", "low": 0.1, "high": 0.01}},
            "search space (dict): 'learning_rate': low 0.1 must be below high 0.01",
        ),
        (
            {"learning_rate": {"type": "loguniform", "low": 0, "high": 0.1}},
            "search space (dict): 'learning_rate': loguniform needs low > 0, not 0",
        ),
        (
            {"learning_rate": {"type": "normal", "low": 0, "high": 0.1}},
            "search space (dict): 'learning_rate': unknown type 'normal' (did you mean 'uniform'?); use one of "
            "choice, uniform, loguniform, quniform, int",
        ),
        (
            {"learning_rate": {"type": "uniform", "lo": 0, "high": 0.1}},
            "search space (dict): 'learning_rate': unknown field 'lo' for uniform (did you mean 'low'?)",
        ),
        (
            {"embedding_size": {"type": "choice", "values": []}},
            "search space (dict): 'embedding_size': choice needs a non-empty list of values, not []",
        ),
        (
            {"embedding_size": {"type": "int", "low": 8.5, "high": 9}},
            "search space (dict): 'embedding_size': int needs an integer low, not 8.5",
        ),
        (
            {"epochs": [1, 2]},
            "search space (dict): 'epochs': also has a fixed value in config_dict; search it or fix it, not both",
        ),
        (
            {"model": ["BPR", "Pop"]},
            "search space (dict): 'model': cannot be searched: the model defines the study; start one study per model",
        ),
        ("reg_weight uniform 0\n", "search space space.test, line 1: 'reg_weight': uniform needs 'low,high', not '0'"),
        (
            "learning_rate loguniform -8,0\nlearning_rat choice [1]\n",
            "search space space.test, line 2: 'learning_rat': not a config key of BPR (did you mean 'learning_rate'?)",
        ),
        (
            "learning_rate choice [1,\n",
            "search space space.test, line 1: 'learning_rate': choice needs a Python literal list such as [1,2], not '[1,'",
        ),
        (
            "learning_rate loguniform\n",
            "search space space.test, line 1: expected 'key type value', not 'learning_rate loguniform'",
        ),
    ],
)
def test_bad_spaces_are_refused_before_any_trial(tiny_path, space, message):
    if isinstance(space, str):
        (tiny_path / "space.test").write_text(space)
        space = tiny_path / "space.test"
    with pytest.raises(SearchSpaceError) as caught:
        study(tiny_path, tiny_path / "study", space=space)
    assert str(caught.value).replace(str(tiny_path) + "/", "") == message
    assert not (tiny_path / "study").exists()


def test_the_grid_sampler_needs_discrete_keys(tiny_path):
    with pytest.raises(
        SearchSpaceError, match="'learning_rate': the grid sampler needs discrete values, not loguniform"
    ):
        study(tiny_path, tiny_path / "study", sampler="grid")
    assert not (tiny_path / "study").exists()


@pytest.mark.slow
def test_a_value_the_config_refuses_fails_its_trial_and_the_study_goes_on(tiny_path, one_thread):
    folder = tiny_path / "study"
    space = {"embedding_size": [0, 8]}  # 0 is not a valid size
    result = study(tiny_path, folder, space=space, trials=2, sampler="grid")
    states = {row["embedding_size"]: row for row in result["trials"]}
    assert states[8]["state"] == "COMPLETE" and states[0]["state"] == "FAIL"
    assert (
        states[0]["error"] == "ConfigError: config key 'embedding_size': 0 is not an integer >= 1 (set in config_dict)"
    )
    assert result["stopped"] == "every value of the grid was tried"
    with (folder / "trials.csv").open() as handle:
        rows = {row["embedding_size"]: row for row in csv.DictReader(handle)}
    assert (
        rows["0"]["state"] == "FAIL" and rows["0"]["valid_score"] == "" and "0 is not an integer" in rows["0"]["error"]
    )

    with pytest.raises(TuningError, match=r"no trial of study 'BPR-tiny' completed; first error: ConfigError"):
        study(tiny_path, tiny_path / "failing", space={"embedding_size": [0]}, trials=2)
    assert [t.state.name for t in stored_trials(tiny_path / "failing")] == ["FAIL", "FAIL"]  # stops after 2 failures


@pytest.mark.slow
def test_cli_end_to_end_and_best_yaml_repeats_the_best_trial(tiny_path, capsys, one_thread):
    (tiny_path / "space.test").write_text("learning_rate loguniform -9,-0.7\nembedding_size choice [8,32]\n")
    folder = tiny_path / "study"
    args = ["tune", "--model", "BPR", "--dataset", "tiny", "--space", str(tiny_path / "space.test"), "--trials", "3"]
    assert main([*args, "--study-dir", str(folder), *fixed_args(tiny_path)]) == 0
    out = capsys.readouterr().out
    result = json.loads((folder / "results.json").read_text())
    best = result["best_trial"]
    assert f"best: trial {best['number']}, MRR@3 " in out and "parameter importances: " in out
    assert out.count(" COMPLETE ") == 3 and "test result of the best trial" in out
    assert set(result["importances"]) == {"learning_rate", "embedding_size"}
    assert {p.name for p in folder.iterdir()} >= {"study.db", "trials", "trials.csv", "best.yaml", "best_test.json"}

    settings = yaml.safe_load((folder / "best.yaml").read_text())
    assert settings["learning_rate"] == best["params"]["learning_rate"] and "checkpoint_dir" not in settings
    assert (
        main(
            [
                "run",
                "--config_files",
                str(folder / "best.yaml"),
                "--checkpoint_dir",
                str(tiny_path / "again"),
                "--quiet",
            ]
        )
        == 0
    )
    (again,) = (tiny_path / "again").iterdir()
    repeated = json.loads((again / "metrics.json").read_text())
    assert repeated["best_valid_score"] == best["valid_score"]  # exactly
    best_test = json.loads((folder / "best_test.json").read_text())
    assert repeated["test_result"] == best_test["test_result"]  # the test result of the same best weights
    checkpoint = Path(best_test["checkpoint"])
    assert evaluate_checkpoint(checkpoint, "valid")["mrr@3"] == best["valid_score"]

    # any trial is `recforge run` with its values (same seed): the same validation score
    other = next(row for row in _rows(folder) if int(row["number"]) != best["number"])
    values = {
        **fixed(tiny_path),
        "learning_rate": float(other["learning_rate"]),
        "embedding_size": int(other["embedding_size"]),
    }
    plain = recforge.run("BPR", "tiny", config_dict=values, saved=False, verbose=False, cmd_args=[])
    assert plain["best_valid_score"] == float(other["valid_score"])

    assert main([*args, "--study-dir", str(folder), "--space", str(tiny_path / "missing.yaml")]) == 2
    assert "recforge: error: search space " in capsys.readouterr().err


def _rows(folder):
    with (folder / "trials.csv").open() as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_cli_interrupted_study_continues_with_any_storage_url(tiny_path, capsys, monkeypatch, one_thread):
    folder = tiny_path / "study"
    storage = f"sqlite:///{tiny_path / 'elsewhere.db'}"  # any URL Optuna accepts (a server for several machines)
    args = ["tune", "--model", "BPR", "--dataset", "tiny", "--space", str(tiny_path / "space.yaml"), "--trials", "2"]
    args += ["--study-dir", str(folder), "--storage", storage, "--study-name", "mine", *fixed_args(tiny_path)]
    (tiny_path / "space.yaml").write_text(yaml.safe_dump(SPACE))
    original = Trainer._train_epoch
    calls = []

    def interrupt_second_trial(self, train_data, epoch_idx, *a, **k):
        calls.append(epoch_idx)
        if len(calls) == 5:  # trial 1, epoch 1
            raise KeyboardInterrupt
        return original(self, train_data, epoch_idx, *a, **k)

    monkeypatch.setattr(Trainer, "_train_epoch", interrupt_second_trial)
    assert main(args) == 130
    err = capsys.readouterr().err
    assert "recforge: study interrupted; the same command continues it (trial 1 " in err and "--resume" not in err
    monkeypatch.undo()
    trials = stored_trials(folder, "mine", storage)
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL"] and not (folder / "study.db").exists()
    assert trials[1].user_attrs["error"] == "interrupted (Ctrl-C or SIGTERM)"
    assert main(args) == 0
    assert [t.state.name for t in stored_trials(folder, "mine", storage)] == ["COMPLETE", "FAIL", "COMPLETE"]
    assert f"study mine ({storage}): 3 trials (2 complete, 1 fail)" in capsys.readouterr().out
    assert masked_url("postgresql://me:secret@host/db") == "postgresql://me:***@host/db"  # never printed or written


def tune_args(tiny_path, trials=2):
    """``recforge tune`` of BPR on tiny with SPACE (written to space.yaml) into <tiny_path>/study."""
    (tiny_path / "space.yaml").write_text(yaml.safe_dump(SPACE))
    args = ["tune", "--model", "BPR", "--dataset", "tiny", "--space", str(tiny_path / "space.yaml")]
    return [*args, "--trials", str(trials), "--study-dir", str(tiny_path / "study"), *fixed_args(tiny_path)]


@pytest.mark.slow
def test_an_interrupted_study_prints_only_its_own_advice(tiny_path, capsys, monkeypatch, one_thread):
    """The trainer's warning on SIGTERM / Ctrl-C advises `recforge run --resume <the trial's checkpoint>`, which would
    not continue the study: inside a study only the study's advice is printed. SIGTERM while a trial's data loads
    (before the trainer handles signals) stops the study the same way."""
    args = tune_args(tiny_path)
    original = Trainer._train_epoch

    def sigterm_at_epoch_1(self, train_data, epoch_idx, *a, **k):
        if epoch_idx == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, train_data, epoch_idx, *a, **k)

    def unhandled(signum, frame):
        raise AssertionError("SIGTERM reached the test's own handler: the study did not handle it")

    previous = signal.signal(signal.SIGTERM, unhandled)
    try:
        monkeypatch.setattr(Trainer, "_train_epoch", sigterm_at_epoch_1)
        capsys.readouterr()
        assert main(args) == 130
        err = capsys.readouterr().err
        assert "--resume" not in err
        assert err.strip().splitlines() == [
            "recforge: study interrupted; the same command continues it (trial 0 was stopped and is recorded as FAIL)"
        ]
        monkeypatch.undo()
        loading = recforge.tuning.trial.run

        def sigterm_while_loading(*a, **k):
            os.kill(os.getpid(), signal.SIGTERM)
            return loading(*a, **k)

        monkeypatch.setattr(recforge.tuning.trial, "run", sigterm_while_loading)
        assert main(args) == 130
        assert capsys.readouterr().err.strip().splitlines() == [
            "recforge: study interrupted; the same command continues it (trial 1 was stopped and is recorded as FAIL)"
        ]
    finally:
        signal.signal(signal.SIGTERM, previous)
    monkeypatch.undo()
    assert main(args) == 0
    assert [t.state.name for t in stored_trials(tiny_path / "study")] == ["FAIL", "FAIL", "COMPLETE", "COMPLETE"]
    assert all(
        t.user_attrs["error"] == "interrupted (Ctrl-C or SIGTERM)" for t in stored_trials(tiny_path / "study")[:2]
    )


@pytest.mark.slow
def test_a_finished_study_run_again_gives_its_stored_test_result(tiny_path, capsys, monkeypatch, one_thread):
    args = tune_args(tiny_path)
    path = tiny_path / "study" / "best_test.json"
    assert main(args) == 0
    first = capsys.readouterr().out
    stored = path.read_bytes()
    record = json.loads(stored)
    phases = []
    original = Trainer.evaluate

    def recording(self, eval_data, *a, **k):
        phases.append(getattr(eval_data, "phase", None))
        return original(self, eval_data, *a, **k)

    monkeypatch.setattr(Trainer, "evaluate", recording)
    assert main(args) == 0
    again = capsys.readouterr().out
    assert phases == []  # no trial ran, and the test split was not evaluated again
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", record["evaluated_at"])
    assert path.read_bytes() == stored
    heading = (
        f"test result of the best trial: the stored result of trial {record['trial']}, evaluated on "
        f"{record['evaluated_at']} from {record['checkpoint']} (not evaluated again):"
    )
    assert heading in again and again.endswith(f"read {path}\n")
    assert f"test result of the best trial (after the search, from {record['checkpoint']}):" in first
    assert (
        first.split(" the best trial")[-1].splitlines()[1:-1] == again.split(" the best trial")[-1].splitlines()[1:-1]
    )

    del record["evaluated_at"]  # as an older recforge wrote it: the file's time is shown
    path.write_text(json.dumps(record))
    os.utime(path, (1767323045, 1767323045))
    assert main(args) == 0 and "evaluated on 2026-01-02 03:04:05 UTC from" in capsys.readouterr().out
    path.write_text(json.dumps({**record, "trial": 99}))  # another trial's result: not used
    assert main(args) == 0 and phases == ["test"]
    assert "test result of the best trial (after the search" in capsys.readouterr().out
    assert json.loads(path.read_text())["trial"] == record["trial"]


def test_without_optuna_tune_says_what_to_install(tiny_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    code = main(["tune", "--model", "BPR", "--space", str(tiny_path / "space.yaml"), "--data_path", str(tiny_path)])
    assert code == 2
    assert capsys.readouterr().err.strip() == "recforge: error: tuning needs Optuna: pip install 'recforge[optuna]'"
