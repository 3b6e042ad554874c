"""Bad input and faults: every case ends with one clear line and exit status 2 (or, where the input is accepted, a
successful run), never a traceback, and leaves what is already on disk unchanged: the data, the test fixtures and
an earlier run folder are hashed before and after each case."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch

from conftest import ROOT, TINY_INTER, entries, tiny_args, write_atomic
from recforge.cli import main
from recforge.errors import ConfigError
from recforge.registry import MODELS, get_model_class

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
        (["--learning_rate", "inf"], "'learning_rate': inf is not a number >= 0 (a finite number is needed)"),
        (["--learning_rate", "nan"], "'learning_rate': nan is not a number >= 0 (a finite number is needed)"),
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


# -- plugins ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("import os\n\ndef f(:\n    pass\n", r"--import {file}: {file}:3: syntax error: invalid syntax"),
        ("x = 1\nraise KeyError('boom')\n", r"--import {file}: {file}:2: KeyError: 'boom'"),
        ("import no_such_package_xyz\n", r"--import {file}: {file}:1: No module named 'no_such_package_xyz'"),
    ],
    ids=["syntax error", "raises", "missing dependency"],
)
def test_a_broken_plugin_is_one_line_with_its_file_and_line(world, capsys, tmp_path, source, message):
    root, _ = world
    plugin = tmp_path / "broken_plugin.py"
    plugin.write_text(source)
    code, err = run_case(world, capsys, [*tiny_args(root, "BPR"), "--import", str(plugin)])
    assert code == 2 and one_error(err) == "recforge: error: " + message.format(file=plugin)
    with pytest.raises(ConfigError) as raised:  # --debug: the error with the original exception as its cause
        main(["--debug", *tiny_args(root, "BPR"), "--import", str(plugin)])
    assert raised.value.__cause__ is not None
    sys.modules.pop("broken_plugin", None)


SAME_NAME = """
from recforge.models.general.bpr import BPR as BuiltIn


class BPR(BuiltIn):
    used = 0

    def calculate_loss(self, interaction):
        BPR.used += 1
        return super().calculate_loss(interaction)
"""


def test_a_plugin_class_named_like_a_built_in_replaces_it_with_a_warning(world, capsys, tmp_path):
    root, _ = world
    (tmp_path / "same_name.py").write_text(SAME_NAME)
    builtin = get_model_class("BPR")
    try:
        args = [*tiny_args(root, "BPR"), "--import", str(tmp_path / "same_name.py"), "--epochs", "1"]
        args += ["--checkpoint_dir", str(tmp_path / "runs")]
        code, err = run_case(world, capsys, args)
        assert code == 0
        assert "same_name.BPR replaces the model BPR of recforge.models.general.bpr for this run" in err
        assert sys.modules["same_name"].BPR.used > 0  # the user's class trained, not the built-in one
        # Registered with the decorator, the same name is refused in one line naming both classes.
        decorated = tmp_path / "decorated_same.py"
        decorated.write_text(
            "from recforge import register_model\n" + SAME_NAME.replace("class BPR", "@register_model\nclass BPR")
        )
        MODELS.replace("BPR", builtin)
        code, err = run_case(world, capsys, [*tiny_args(root, "BPR"), "--import", str(decorated)])
        assert code == 2 and "decorated_same.BPR: a model named BPR is already registered" in one_error(err)
    finally:
        MODELS.replace("BPR", builtin)
        sys.modules.pop("same_name", None)
        sys.modules.pop("decorated_same", None)


# -- input that names things that do not exist ---------------------------------------------------------------------


def test_options_that_contradict_a_checkpoint_are_refused(world, capsys):
    root, earlier = world
    best = earlier / "checkpoints" / "best.pth"
    code, err = run_case(world, capsys, ["evaluate", "--checkpoint", str(best), "--model", "Pop"])
    assert code == 2 and f"--model Pop: checkpoint {best} holds BPR trained on tiny" in one_error(err)
    code, err = run_case(world, capsys, ["evaluate", "--checkpoint", str(best), "--dataset", "ml-100k"])
    assert code == 2 and f"--dataset ml-100k: checkpoint {best} holds BPR trained on tiny" in one_error(err)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--unused_col", "{inter: [ratin]}"], "config key 'unused_col' names 'ratin' of the .inter file"),
        (["--alias_of_item_id", "[nope]"], "config key 'alias_of_item_id' names 'nope', which is not a loaded"),
    ],
)
def test_keys_that_name_fields_are_checked_against_the_data(world, capsys, extra, message):
    root, _ = world
    code, err = run_case(world, capsys, [*tiny_args(root, "BPR"), *extra])
    assert code == 2 and message in one_error(err)


def test_a_field_key_naming_a_missing_field_is_a_warning(world, capsys, tmp_path):
    """RATING_FIELD / TIME_FIELD: RecBole's YAML files set them for data sets without the field; a warning says
    which field is not used (and the closest loaded one)."""
    root, _ = world
    args = [*tiny_args(root, "BPR"), "--epochs", "1", "--checkpoint_dir", str(tmp_path), "--TIME_FIELD", "timestmp"]
    code, err = run_case(world, capsys, [*args, "--eval_args", "{split: {RS: [0.6, 0.2, 0.2]}, order: RO}"])
    assert code == 0
    assert "config key 'TIME_FIELD' names 'timestmp', which is not a loaded field (did you mean 'timestamp'?)" in err


def test_numerical_features_naming_a_missing_field(world, capsys, tmp_path):
    from feature_data import write_feature_data

    write_feature_data(tmp_path)
    args = ["run", "--model", "FM", "--dataset", "feat", "--data_path", str(tmp_path), "--load_col", "~"]
    args += ["--threshold", "{rating: 3}", "--numerical_features", "[pricee]", "--quiet"]
    code, err = run_case(world, capsys, args, extra_roots=(tmp_path / "feat",))
    assert (
        code == 2
        and "'numerical_features' names 'pricee', which is not a loaded field (did you mean 'price'?)" in one_error(err)
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b"epochs: 2\nlearning_rate: 0.1\nepochs: 5\n",
            "line 3, column 1: the key 'epochs' is written twice (lines 1 and 3)",
        ),
        (
            b"eval_args:\n  mode: full\n  mode: uni10\n",
            "line 3, column 3: the key 'mode' is written twice (lines 2 and 3)",
        ),
        (b"epochs: 2\n# caf\xe9\n", "line 2: not UTF-8 text (byte 0xe9 at byte 6 of the line)"),
    ],
    ids=["duplicate key", "duplicate nested key", "not UTF-8"],
)
def test_config_files_with_duplicate_keys_or_bad_bytes(world, capsys, tmp_path, content, message):
    root, _ = world
    config = tmp_path / "my.yaml"
    config.write_bytes(content)
    code, err = run_case(world, capsys, [*tiny_args(root, "BPR"), "--config_files", str(config)])
    assert code == 2 and f"config file {config}, {message}" in one_error(err)
    code, err = run_case(world, capsys, [*tiny_args(root, "BPR"), "--eval_args", "{mode: full, mode: uni10}"])
    assert code == 2 and "config key 'eval_args': the key 'mode' is written twice" in one_error(err)


def test_a_data_set_folder_that_is_a_link_loop(world, capsys, tmp_path):
    root, _ = world
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    args = [*tiny_args(root, "BPR"), "--data_path", str(tmp_path)]
    args[args.index("--dataset") + 1] = "loop"
    code, err = run_case(world, capsys, args)
    assert code == 2 and f"{tmp_path / 'loop'}: a symbolic link that leads nowhere" in one_error(err)


# -- training faults -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "params", "message"),
    [
        ("LightGBM", "{num_leaves: -5, objective: binary}", "'lgb_params': lightgbm refuses the booster's parameters"),
        ("XGBoost", "{max_depth: -3}", "'xgb_params': xgboost refuses the booster's parameters or data: value -3"),
    ],
)
def test_a_parameter_the_booster_library_refuses(world, capsys, tmp_path, model, params, message):
    pytest.importorskip(model.lower())
    root, _ = world
    runs = tmp_path / "runs"
    args = [*tiny_args(root, model), "--threshold", "{rating: 3}", "--checkpoint_dir", str(runs)]
    args += ["--lgb_params" if model == "LightGBM" else "--xgb_params", params]
    code, err = run_case(world, capsys, args)
    assert code == 2 and message in one_error(err)
    assert not runs.exists()  # refused before a run folder was made


def test_a_history_line_that_is_not_utf8_is_dropped_with_its_line(world, capsys, tmp_path):
    root, earlier = world
    run = tmp_path / "copy"
    shutil.copytree(earlier, run)
    history = run / "history.jsonl"
    lines = history.read_bytes().splitlines()
    history.write_bytes(b"\n".join([lines[0].replace(b'"epoch"', b'"\xe9poch"'), *lines[1:]]) + b"\n")
    capsys.readouterr()
    code = main(["run", "--resume", str(run / "checkpoints" / "last.pth"), "--epochs", "3"])
    err = capsys.readouterr().err
    assert code == 0 and "history.jsonl, line 1: damaged (not UTF-8 text: byte 0xe9 at byte 3); dropped" in err
    assert "Traceback" not in err
    assert [json.loads(line)["epoch"] for line in history.read_text().splitlines()] == [1, 2]


@pytest.fixture
def full_disk(tmp_path):
    """A 256 KB file system (tmpfs): checkpoints cannot be written on it."""
    import subprocess

    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small file system here ({done.stderr.decode().strip()})")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)  # lazily: the run log may still be open


@pytest.mark.slow
def test_a_real_full_disk_during_a_checkpoint_save(world, capsys, full_disk):
    root, _ = world
    args = [*tiny_args(root, "BPR"), "--checkpoint_dir", str(full_disk / "runs"), "--embedding_size", "512"]
    code, err = run_case(world, capsys, args)
    assert code == 2 and "No space left on device" in one_error(err) and "a file-system error" in err
    assert not list(
        full_disk.rglob("*.tmp")
    )  # nothing half-written; a checkpoint saved before the disk filled is whole
    for checkpoint in full_disk.rglob("*.pth"):
        assert torch.load(checkpoint, weights_only=True)["epoch"] >= -1


# -- distributed settings the machine cannot honour ------------------------------------------------------------------


def test_a_distributed_port_in_use(world, capsys):
    import socket

    root, _ = world
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = [*tiny_args(root, "BPR"), "--nproc", "2", "--ip", "127.0.0.1", "--port", str(port)]
        code, err = run_case(world, capsys, args)
    assert code == 2 and f"config key 'port': port {port} is in use on 127.0.0.1" in one_error(err)


def test_more_processes_than_cores(world, capsys):
    root, _ = world
    cores = len(os.sched_getaffinity(0))
    code, err = run_case(world, capsys, [*tiny_args(root, "BPR"), "--nproc", str(cores + 1)])
    assert code == 2 and f"nproc {cores + 1} is more than the {cores} CPU core(s)" in one_error(err)


# -- concurrent writers ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_run_folder_is_locked_while_a_process_trains_in_it(world, capsys, tmp_path):
    """Two --resume of one run: the second is refused in one line and changes nothing; once the first process is
    killed (SIGKILL: no clean-up), its lock is gone and the run resumes."""
    import signal
    import subprocess
    import time

    root, earlier = world
    run = tmp_path / "busy"
    shutil.copytree(earlier, run)
    last = run / "checkpoints" / "last.pth"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "recforge", "run", "--resume", str(last), "--epochs", "100000", "--quiet"]
    trainer = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 120
        while len((run / "history.jsonl").read_text().splitlines()) < 4:
            assert time.monotonic() < deadline and trainer.poll() is None, "the first run did not train"
            time.sleep(0.1)
        code, err = run_case(world, capsys, ["run", "--resume", str(last), "--epochs", "50"], extra_roots=())
        assert code == 2 and f"run folder {run} is in use: another recforge process is training in it" in one_error(err)
    finally:
        trainer.send_signal(signal.SIGKILL)
        trainer.wait(timeout=60)
    capsys.readouterr()
    assert main(["run", "--resume", str(last), "--epochs", str(torch.load(last, weights_only=True)["epoch"] + 2)]) == 0
