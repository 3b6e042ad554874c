"""Bad input to the serving commands (``recforge recommend``, ``recforge evaluate --predictions``) and a
``serving.npz`` that is not its checkpoint's: one ``recforge: error:`` line and exit status 2 (or a successful
run where the input is accepted), never a traceback, nothing on disk changed (``run_case`` of test_cli_faults)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

import recforge
import test_cli_faults
from conftest import TINY_INTER, tiny_args, write_atomic
from recforge.cli import main
from recforge.errors import CheckpointError
from test_cli_faults import HEADER, one_error, run_case

world = test_cli_faults.world  # the module-scoped fixture: a data folder and an earlier run of BPR on it
BIG = "x" * 200_000  # above the csv module's field limit (131072 characters)
HUGE = "y" * 2_000_000  # above pyarrow's block size (1 MiB)


def recommend_args(world, *extra: str) -> list[str]:
    _, earlier = world
    return ["recommend", "--checkpoint", str(earlier / "checkpoints" / "best.pth"), *extra, "--quiet"]


def evaluate_args(world, predictions: Path) -> list[str]:
    root, _ = world
    return [
        *("evaluate", "--predictions", str(predictions), "--dataset", "tiny", "--data_path", str(root), "--quiet"),
        *("--eval_args", "{split: {RS: [0.6, 0.2, 0.2]}, order: TO, group_by: user, mode: full}"),
        *("--load_col", "{inter: [user_id, item_id, rating, timestamp]}", "--topk", "[1, 2]"),
        *("--metrics", "[Hit]", "--valid_metric", "Hit@2"),
    ]


# -- files serving reads ---------------------------------------------------------------------------------------


def test_non_utf8_bytes_in_a_users_file_name_the_line(world, capsys, tmp_path):
    users = tmp_path / "users.txt"
    users.write_bytes(b"u1\ncaf\xe9\n")
    code, err = run_case(world, capsys, recommend_args(world, "--users-file", str(users)))
    assert code == 2 and f"users file {users}, line 2: not UTF-8 text (byte 0xe9" in one_error(err)


@pytest.mark.parametrize(
    ("content", "line"),
    [(b"user_id,item_\xff,rank\nu1,i5,1\n", 1), (b"user_id,item_id,rank\nu1,i5,1\nu2,caf\xe9,1\n", 3)],
)
def test_non_utf8_bytes_in_a_prediction_file_name_the_line(world, capsys, tmp_path, content, line):
    path = tmp_path / "p.csv"
    path.write_bytes(content)
    code, err = run_case(world, capsys, evaluate_args(world, path))
    assert code == 2 and f"p.csv, line {line}: not UTF-8 text (byte 0x" in one_error(err)


def test_an_oversized_token_in_a_users_file_is_one_short_line(world, capsys, tmp_path):
    users = tmp_path / "users.txt"
    users.write_text(f"u1\n{BIG}\n")
    code, err = run_case(world, capsys, recommend_args(world, "--users-file", str(users)))
    line = one_error(err)
    assert code == 2 and "user 'xxxxxxxx" in line and "(200000 characters)" in line and len(line) < 1000
    code, err = run_case(world, capsys, recommend_args(world, "--users-file", str(users), "--fallback", "popular"))
    assert code == 0, err


def test_an_oversized_field_in_a_prediction_file(world, capsys, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(f"user_id,item_id,rank\nu1,i5,1\n{BIG},i4,1\n")  # an unknown user: named, shortened
    code, err = run_case(world, capsys, evaluate_args(world, path))
    line = one_error(err)
    assert code == 2 and "p.csv, line 3: user 'xxxxxxxx" in line and "(200000 characters)" in line
    assert len(line) < 1000
    path.write_text(f"user_id,item_id,rank,note\nu1,i5,1,{BIG}\nu2,i4,1,{HUGE}\nu2,i4,2,z\n")  # found past both
    code, err = run_case(world, capsys, evaluate_args(world, path))
    assert code == 2 and "p.csv, line 4: user 'u2' lists item 'i4' twice (first on line 3)" in one_error(err)
    path.write_text(f"user_id,item_id,rank,note\nu1,i5,1,{BIG}\nu2,i4,1,{HUGE}\n")  # valid: accepted
    code, err = run_case(world, capsys, evaluate_args(world, path))
    assert code == 0, err


def test_a_byte_order_mark_is_accepted_in_prediction_and_users_files(world, capsys, tmp_path):
    path = tmp_path / "p.csv"
    path.write_bytes(b"\xef\xbb\xbfuser_id,item_id,rank\nu1,i5,1\nu2,i4,1\n")  # what spreadsheet programs write
    code, err = run_case(world, capsys, evaluate_args(world, path))
    assert code == 0, err
    users = tmp_path / "users.txt"
    users.write_bytes(b"\xef\xbb\xbfu1\nu2\n")
    code, err = run_case(world, capsys, recommend_args(world, "--users-file", str(users), "--format", "csv"))
    assert code == 0, err


# -- serving.npz belongs to its checkpoint ---------------------------------------------------------------------


def another_run(world, tmp_path: Path, name: str, data_path: Path, rows: list[list[object]]) -> Path:
    """The run folder of BPR (one epoch) on data set ``name`` written under ``data_path``."""
    write_atomic(data_path, name, "inter", HEADER, rows)
    args = tiny_args(data_path, "BPR")
    args[args.index("--dataset") + 1] = name
    runs = tmp_path / f"runs-{name}-{data_path.name}"
    assert main([*args, "--epochs", "1", "--checkpoint_dir", str(runs)]) == 0
    (run,) = runs.iterdir()
    return run


def test_a_serving_file_of_another_run_is_refused(world, capsys, tmp_path):
    _, earlier = world
    renamed = [[u, i.replace("i", "j"), r, t] for u, i, r, t in TINY_INTER]
    cases = {  # the same name and sizes, other item tokens; another data set with one more item
        "tiny": (another_run(world, tmp_path, "tiny", tmp_path / "b", renamed), "6 items"),
        "other": (another_run(world, tmp_path, "other", tmp_path / "a", [*renamed, ["u1", "j7", 1, 6]]), "7 items"),
    }
    for name, (foreign, items) in cases.items():
        copy = tmp_path / f"copy-{name}"
        shutil.copytree(earlier, copy)
        shutil.copy(foreign / "serving.npz", copy / "serving.npz")
        best = copy / "checkpoints" / "best.pth"
        code, err = run_case(world, capsys, ["recommend", "--checkpoint", str(best), "--user", "u1", "--quiet"])
        line = one_error(err)
        assert code == 2 and f"serving.npz in {copy} is for data set {name} with 4 users and {items}" in line
        assert f"but checkpoint {best} was trained on tiny with 4 users and 6 items" in line
        assert "item tokens" in line and "user tokens" not in line
        with pytest.raises(CheckpointError, match="serving.npz in .* is for data set"):
            recforge.load(best)


def test_a_checkpoint_without_vocabulary_digests_is_still_checked_by_data_set_name(world, tmp_path):
    _, earlier = world
    foreign = another_run(world, tmp_path, "other", tmp_path / "a", [list(r) for r in TINY_INTER])
    copy = tmp_path / "copy"
    shutil.copytree(earlier, copy)
    shutil.copy(foreign / "serving.npz", copy / "serving.npz")
    best = copy / "checkpoints" / "best.pth"
    state = torch.load(best, weights_only=True)
    state["callbacks"] = {}  # as a checkpoint written before the digests were stored
    torch.save(state, best)
    with pytest.raises(CheckpointError, match=r"is for data set other with .* but checkpoint .* was trained on tiny;"):
        recforge.load(best)
    shutil.copy(earlier / "serving.npz", copy / "serving.npz")
    assert recforge.load(best).recommend(["u1"]).num_rows > 0
