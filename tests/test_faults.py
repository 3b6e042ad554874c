"""Bad input and faults: every case ends with one clear line and exit status 2 (or, where the input is accepted, a
successful run), never a traceback, and leaves what is already on disk unchanged: the data, the test fixtures and
an earlier run folder are hashed before and after each case."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from conftest import ROOT, TINY_INTER, entries, tiny_args, write_atomic
from recforge.cli import main

HEADER = ["user_id:token", "item_id:token", "rating:float", "timestamp:float"]


def digest(*roots: Path) -> dict[str, str]:
    """sha256 of every file under the roots (symbolic links by their target text)."""
    found = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_symlink():
                found[str(path)] = os.readlink(path)
            elif path.is_file():
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A data folder with the tiny data set and a finished earlier run of BPR on it."""
    root = tmp_path_factory.mktemp("world")
    write_atomic(root, "tiny", "inter", HEADER, [list(r) for r in TINY_INTER])
    assert main([*tiny_args(root, "BPR"), "--epochs", "2"]) == 0
    (earlier,) = (root / "saved").iterdir()
    return root, earlier


def run_case(world, capsys, args: list[str], extra_roots=()) -> tuple[int, str]:
    """Run the CLI; assert that nothing on disk that existed before changed; return (status, stderr)."""
    root, earlier = world
    roots = (root / "tiny", earlier, ROOT / "tests" / "data", *extra_roots)
    before = digest(*roots)
    capsys.readouterr()
    code = main(args)
    err = capsys.readouterr().err
    assert digest(*roots) == before
    assert "Traceback" not in err
    return code, err


def one_error(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.startswith("recforge: error:")]
    assert len(lines) == 1, err
    return lines[0]


def bad_data(world, name: str, header: list[str], rows: list[list[object]]) -> list[str]:
    """Arguments that run BPR on a data set ``name`` written next to the tiny one."""
    root, _ = world
    write_atomic(root, name, "inter", header, rows)
    args = tiny_args(root, "BPR")
    args[args.index("--dataset") + 1] = name
    return [*args, "--epochs", "1", "--checkpoint_dir", str(root / f"saved-{name}")]


CASES = {
    "nan in a float column": (
        [["u1", "i1", "nan", 1], *TINY_INTER[1:]],
        r"nan\.inter, line 2, column 3 \(rating:float\): 'nan' is not a finite number",
    ),
    "inf in a float column": (
        [*TINY_INTER[:4], ["u1", "i5", "inf", 5], *TINY_INTER[5:]],
        r"line 6, column 3 \(rating:float\): 'inf' is not a finite number",
    ),
    "a word in a float column": (
        [*TINY_INTER[:2], ["u1", "i3", "three", 3], *TINY_INTER[3:]],
        r"line 4, column 3 \(rating:float\): 'three' is not a number",
    ),
    "a missing column": ([*TINY_INTER[:2], ["u1", "i3", 3], *TINY_INTER[3:]], r"line 4: expected 4 columns"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_values_name_file_line_and_column(world, capsys, case):
    import re

    rows, message = CASES[case]
    name = "bad" + str(list(CASES).index(case)) if case != "nan in a float column" else "nan"
    code, err = run_case(world, capsys, bad_data(world, name, HEADER, [list(r) for r in rows]))
    assert code == 2 and re.search(message, one_error(err)), err


def test_non_utf8_bytes_name_the_line(world, capsys):
    root, _ = world
    args = bad_data(world, "latin", HEADER, [list(r) for r in TINY_INTER])
    path = root / "latin" / "latin.inter"
    path.write_bytes(path.read_bytes().replace(b"u3\ti2", "u3\tcaf\xe9".encode("latin-1"), 1))
    code, err = run_case(world, capsys, args)
    assert code == 2 and "latin.inter, line 12: not UTF-8 text (byte 0xe9 at character 7)" in one_error(err)


def test_a_byte_order_mark_is_accepted(world, capsys):
    root, _ = world
    args = bad_data(world, "bom", HEADER, [list(r) for r in TINY_INTER])
    path = root / "bom" / "bom.inter"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())  # what spreadsheet programs write
    config = root / "bom.yaml"
    config.write_bytes(b"\xef\xbb\xbfepochs: 1\n")
    code, err = run_case(world, capsys, [*args, "--config_files", str(config)])
    assert code == 0, err


def test_the_interaction_file_is_a_folder_or_a_link_loop(world, capsys):
    root, _ = world
    args = bad_data(world, "folder", HEADER, [])
    (root / "folder" / "folder.inter").unlink()
    (root / "folder" / "folder.inter").mkdir()
    code, err = run_case(world, capsys, args)
    assert code == 2 and "folder.inter: not a file (a folder?)" in one_error(err)
    (root / "loop").mkdir()
    (root / "loop" / "loop.inter").symlink_to(root / "loop" / "loop.inter")
    args[args.index("--dataset") + 1] = "loop"
    code, err = run_case(world, capsys, args)
    assert code == 2 and "loop.inter: a symbolic link that leads nowhere" in one_error(err)


def test_data_path_and_checkpoint_dir_that_are_files(world, capsys):
    root, _ = world
    a_file = root / "not-a-folder"
    a_file.write_text("x")
    args = [*tiny_args(root, "BPR"), "--data_path", str(a_file)]
    code, err = run_case(world, capsys, args)
    assert code == 2 and f"config key 'data_path': {a_file} is a file, not a folder" in one_error(err)
    args = [*tiny_args(root, "BPR"), "--checkpoint_dir", str(a_file / "runs")]
    code, err = run_case(world, capsys, args)
    assert code == 2 and f"config key 'checkpoint_dir': {a_file} is a file, not a folder" in one_error(err)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_an_unreadable_file(world, capsys):
    root, _ = world
    args = bad_data(world, "locked", HEADER, [list(r) for r in TINY_INTER])
    path = root / "locked" / "locked.inter"
    path.chmod(0)
    try:
        code, err = run_case(world, capsys, args)
    finally:
        path.chmod(0o644)
    assert code == 2 and "locked.inter: cannot be read (Permission denied)" in one_error(err)


def test_a_permission_error_is_one_line_also_when_run_as_root(world, capsys, monkeypatch):
    """The same case as above where the suite runs as root (CI does): the file system's refusal is simulated."""
    import builtins

    root, _ = world
    args = bad_data(world, "denied", HEADER, [list(r) for r in TINY_INTER])
    real_open = builtins.open

    def refusing_open(file, *rest, **kwargs):
        if str(file).endswith("denied.inter"):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *rest, **kwargs)

    monkeypatch.setattr(builtins, "open", refusing_open)
    code, err = run_case(world, capsys, args)
    line = one_error(err)
    assert code == 2 and "denied.inter: Permission denied (a file-system error; check the path, its permissions" in line


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--embedding_size", "1000000000"],
            r"BPR would need [\d,.]+ GiB .* free; lower the model's sizes "
            r"\(embedding_size: 1000000000\)",
        ),
        (["--device", "cuda"], "config key 'device': cuda is not available here"),
        (["--learning_rate", "inf"], "'learning_rate': inf is not a number > 0 (a finite number is needed)"),
        (["--learning_rate", "nan"], "'learning_rate': nan is not a number > 0 (a finite number is needed)"),
        (["--train_batch_size", "0"], "'train_batch_size': 0 is not an integer >= 1"),
        (["--learing_rate", "0.1", "--epoch", "3"], "unknown config keys: 'learing_rate' in the command line"),
    ],
)
def test_impossible_settings_are_one_line(world, capsys, extra, message):
    import re

    root, _ = world
    code, err = run_case(world, capsys, [*tiny_args(root, "BPR"), *extra])
    line = one_error(err)
    assert code == 2 and (re.search(message, line) or message in line), err


def test_a_mistyped_resume_changes_nothing(world, capsys):
    root, earlier = world
    last = earlier / "checkpoints" / "last.pth"
    code, err = run_case(world, capsys, ["run", "--resume", str(last), "--model", "LightGCN", "--quiet"])
    assert code == 2 and f"checkpoint {last} holds a BPR model, but the model to load into is LightGCN" in one_error(
        err
    )
    truncated = root / "truncated.pth"
    truncated.write_bytes(last.read_bytes()[:300])
    code, err = run_case(world, capsys, ["run", "--resume", str(truncated), "--quiet"])
    assert code == 2 and f"checkpoint {truncated} cannot be read" in one_error(err)
    code, err = run_case(world, capsys, ["evaluate", "--checkpoint", str(root / "nope.pth")])
    assert code == 2 and "nope.pth does not exist" in one_error(err)


def test_resume_tolerates_a_torn_history_line_and_removes_stale_temporaries(world, capsys, tmp_path):
    root, earlier = world
    run = tmp_path / "copy"
    shutil.copytree(earlier, run)
    history = run / "history.jsonl"
    history.write_text(history.read_text() + '{"epoch": 2, "loss": 0.6')  # a kill in the middle of a line
    stale = run / "checkpoints" / ".last.pth.999999.abcd.tmp"  # a save killed by SIGKILL (no such process)
    stale.write_bytes(b"partial checkpoint")
    capsys.readouterr()
    code = main(["run", "--resume", str(run / "checkpoints" / "last.pth"), "--epochs", "3"])
    err = capsys.readouterr().err
    assert code == 0 and "history.jsonl, line 3: torn by a kill during a write; dropped" in err
    assert [json.loads(line)["epoch"] for line in history.read_text().splitlines()] == [0, 1, 2]
    assert not stale.exists() and not list(run.rglob("*.tmp"))


def test_cache_size_follows_the_text_not_the_longest_token(world, tmp_path, monkeypatch):
    """One 2 MB token among many short ones: a fixed-width string array would pad every token to 2 MB."""
    from recforge import Config, create_dataset

    monkeypatch.setenv("RECFORGE_CACHE_DIR", str(tmp_path / "cache"))
    rows = [[f"u{u}", f"i{u * 7 % 500}", 1, u] for u in range(2000)]
    rows.append(["u0", "x" * 2_000_000, 1, 1])
    write_atomic(tmp_path, "long", "inter", HEADER, rows)
    config = Config("BPR", "long", config_dict={"data_path": str(tmp_path), "load_col": None}, cmd_args=[])
    dataset = create_dataset(config)
    (entry,) = entries(tmp_path / "cache" / "datasets" / "long")
    assert (
        sum(f.stat().st_size for f in entry.rglob("*") if f.is_file()) < 5_000_000
    )  # measured before the fix: 4 GB for these 2,500 tokens
    again = create_dataset(config)
    assert again.field2id_token["item_id"][-1] == "x" * 2_000_000
    assert list(again.field2id_token["user_id"]) == list(dataset.field2id_token["user_id"])


def test_out_of_memory_inside_torch_is_one_line(world, capsys, monkeypatch):
    root, _ = world

    def fail(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")

    monkeypatch.setattr(torch.nn.Embedding, "reset_parameters", fail)
    code, err = run_case(world, capsys, tiny_args(root, "BPR"))
    assert code == 2 and "out of memory ([enforce fail" in one_error(err) and "lower the model's sizes" in err


def test_exports_with_windows_line_ends_and_blank_lines_are_accepted(world, capsys):
    root, _ = world
    args = bad_data(world, "crlf", HEADER, [list(r) for r in TINY_INTER])
    path = root / "crlf" / "crlf.inter"
    lines = path.read_text().splitlines()
    path.write_bytes(("\r\n".join([*lines[:5], "", *lines[5:]]) + "\r\n\r\n").encode())
    code, err = run_case(world, capsys, args)
    assert code == 0, err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "line 1: the header is empty"),
        (
            b"user_id:token\titem_id:token\trating:float\ttimestamp:float\n",
            "no rows left in",
        ),
        (
            b"user_id:token,item_id:token,rating:float,timestamp:float\nu1,i1,5,1\n",
            "line 1: the header has no '\\t' (field_separator) but is separated by ','; set field_separator: ','",
        ),
        (b"user_id:token\titem_id:tokn\n", "line 1, column 2: unknown field type 'tokn'"),
    ],
)
def test_empty_and_misformatted_files(world, capsys, content, message):
    root, _ = world
    name = "shape" + hashlib.sha256(content).hexdigest()[:8]
    args = bad_data(world, name, HEADER, [])
    (root / name / f"{name}.inter").write_bytes(content)
    code, err = run_case(world, capsys, args)
    assert code == 2 and message in one_error(err), err


def test_a_full_disk_during_a_checkpoint_leaves_no_temporary_file(world, capsys, monkeypatch):
    import errno

    root, _ = world
    original = torch.save

    def full_disk(obj, handle, *args, **kwargs):
        original(obj, handle, *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    runs = root / "saved-full"
    code, err = run_case(world, capsys, [*tiny_args(root, "BPR"), "--checkpoint_dir", str(runs)])
    assert code == 2 and "No space left on device (a file-system error" in one_error(err)
    assert not list(runs.rglob("*.tmp")) and not list(runs.rglob("*.pth"))
