import json
import subprocess
import sys

import pytest
import yaml

from conftest import tiny_args
from recforge.cli import main
from recforge.models import model_names


def test_run_prints_a_table_and_writes_a_run_folder(tiny_path, capsys):
    assert main(tiny_args(tiny_path)) == 0
    out = capsys.readouterr().out
    assert "valid" in out and "test" in out
    row = next(line for line in out.splitlines() if line.startswith("recall@1 "))
    assert row.split() == ["recall@1", "0.5000", "0.7500"]  # valid, test (hand-computed in test_trainer)
    (run_dir,) = (tiny_path / "saved").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test_result"]["recall@1"] == 0.75 and metrics["model"] == "Pop"
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["eval_args"]["order"] == "TO"
    assert (run_dir / "checkpoints" / "best.pth").is_file()

    assert main(["evaluate", "--checkpoint", str(run_dir / "checkpoints" / "best.pth"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert next(line for line in out.splitlines() if line.startswith("recall@1 ")).split() == [
        "recall@1",
        "0.5000",
        "0.7500",
    ]


def test_run_log_holds_the_whole_run(tiny_path):
    args = [a for a in tiny_args(tiny_path) if a != "--quiet"]
    assert main(args) == 0
    (run_dir,) = (tiny_path / "saved").iterdir()
    log = (run_dir / "run.log").read_text()
    assert "tiny: 4 users, 6 items, 20 interactions" in log  # logged before the folder existed
    assert "epoch 0 evaluating" in log and "test result: recall@1: 0.7500" in log


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model", "BRP"], "recforge: error: unknown model 'BRP' (did you mean 'BPR'?)"),
        (
            ["--model", "BPR", "--learning_rat", "0.1"],
            "unknown config key 'learning_rat' in the command line (did you mean 'learning_rate'?)",
        ),
        (["--model", "BPR", "--dataset", "nope"], "recforge: error: data set 'nope' not found"),
        (
            ["--model", "BPR", "--epochs", "-3"],
            "config key 'epochs': -3 is not an integer >= 0 (set in the command line)",
        ),
    ],
)
def test_errors_are_one_line_without_traceback(tmp_path, capsys, extra, message):
    code = main(["run", *extra, "--data_path", str(tmp_path), "--checkpoint_dir", str(tmp_path / "saved")])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "saved").exists()  # nothing half-written


def test_debug_shows_the_traceback(tmp_path):
    from recforge.errors import ConfigError

    with pytest.raises(ConfigError):
        main(["--debug", "run", "--model", "BRP"])


def test_evaluate_a_missing_checkpoint(tmp_path, capsys):
    assert main(["evaluate", "--checkpoint", str(tmp_path / "none.pth")]) == 2
    assert "checkpoint" in capsys.readouterr().err


def test_models_and_datasets(tiny_path, capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    listed = [line.split()[0] for line in out.splitlines()]
    assert listed == sorted(model_names()) and {"BPR", "CKE", "LightGCN", "NCL", "Pop"} <= set(listed)
    assert "embedding_size=64" in out
    assert main(["datasets", "--data_path", str(tiny_path)]) == 0
    out = capsys.readouterr().out
    assert "ml-latest-small      bundled" in out and "tiny" in out and "ml-100k" in out


def test_python_dash_m():
    done = subprocess.run([sys.executable, "-m", "recforge", "models"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "BPR" in done.stdout


def test_decimal_places_and_failed_runs_are_logged(tiny_path, capsys):
    assert main([*tiny_args(tiny_path), "--metric_decimal_place", "2"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("recall@1 "))
    assert row.split() == ["recall@1", "0.50", "0.75"]
    args = [a for a in tiny_args(tiny_path, "BPR") if a != "--quiet"]
    code = main([*args, "--learning_rate", "1e30", "--learner", "sgd", "--checkpoint_dir", str(tiny_path / "nan")])
    assert code == 2
    assert "NaN scores" in capsys.readouterr().err
    (run_dir,) = (tiny_path / "nan").iterdir()
    assert "run failed: TrainingError: the model produced NaN scores" in (run_dir / "run.log").read_text()
