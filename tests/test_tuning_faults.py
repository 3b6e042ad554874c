"""Bad input and faults of ``recforge tune``: each case ends with one line ``recforge: error: ...`` and exit status 2,
never a traceback, and leaves the data and an existing study folder (its study.db, trial run folders and results)
as they were: both are hashed before and after each case, which runs against that study's folder."""

from __future__ import annotations

import sqlite3
import time

import pytest

from conftest import TINY_INTER, write_atomic
from recforge.cli import main
from recforge.tuning import read_space
from test_cli_faults import digest
from test_tuning import INTER_HEADER, fixed_args

SPACE_YAML = "learning_rate: {type: loguniform, low: 1e-4, high: 0.5}\nembedding_size: [8, 32]\n"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The tiny data set and a finished study of BPR on it (2 trials)."""
    root = tmp_path_factory.mktemp("tuning-world")
    write_atomic(root, "tiny", "inter", INTER_HEADER, [list(r) for r in TINY_INTER])
    (root / "good.yaml").write_text(SPACE_YAML)  # never rewritten by a case
    assert main([*tune_args(root, root / "good.yaml"), "--trials", "2"]) == 0
    return root


def tune_args(root, space, folder=None) -> list[str]:
    args = ["tune", "--model", "BPR", "--dataset", "tiny", "--space", str(space), "--trials", "2"]
    return [*args, "--study-dir", str(folder or root / "study"), *fixed_args(root)]


def refused(world, capsys, args: list[str], *extra_roots) -> str:
    """Run the CLI: exit status 2, one error line, no traceback, the data and the study folders unchanged; the line
    (with the world's path left out) is returned."""
    roots = (world / "tiny", world / "study", *extra_roots)
    before = digest(*roots)
    capsys.readouterr()
    code = main(args)
    err = capsys.readouterr().err
    assert digest(*roots) == before
    assert "Traceback" not in err and code == 2, err
    lines = [line for line in err.strip().splitlines() if line.startswith("recforge: error:")]
    assert len(lines) == 1 and len(err.strip().splitlines()) == 1, err
    return lines[0].replace(f"{world}/", "")


def space_file(world, name: str, content: str | bytes):
    path = world / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


@pytest.mark.slow
def test_a_damaged_study_file_is_named_with_what_to_do(world, capsys):
    folder = world / "damaged"
    folder.mkdir()
    (folder / "study.db").write_bytes(bytes(range(256)) * 16)  # not a SQLite file
    line = refused(world, capsys, tune_args(world, world / "good.yaml", folder), folder)
    assert line == (
        "recforge: error: storage damaged/study.db: not a readable SQLite database, damaged or another kind of file "
        "(DatabaseError: file is not a database); move it away to start the study afresh (its trials are lost), or "
        "give another --study-dir or --storage"
    )


@pytest.mark.slow
def test_a_locked_study_file_is_named_with_what_to_do(world, capsys):
    holder = sqlite3.connect(world / "study" / "study.db", timeout=0)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        line = refused(world, capsys, tune_args(world, world / "good.yaml"))
    finally:
        holder.rollback()
        holder.close()
    assert line == (
        "recforge: error: storage study/study.db: the database is locked by another process (another recforge tune "
        "on this study?); run the same command again when that process has finished"
    )
    assert time.monotonic() - started < 60  # sqlite's 5 s wait for the lock, then the message


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (
            [f"{key}: {{type: int, low: 1, high: 10000}}" for key in ("a", "b", "c", "d", "e", "f")],
            "the grid has 1,000,000,000,000,000,000,000,000 points (10,000 (a) x 10,000 (b) x 10,000 (c) x 10,000 (d) "
            "x 10,000 (e) x 10,000 (f)); the grid sampler takes at most 1,000,000: search fewer values, or use the tpe "
            "or random sampler",
        ),
        (  # one key whose values alone would fill the memory if they were listed
            ["embedding_size: {type: int, low: 1, high: 9007199254740992}"],
            "the grid has 9,007,199,254,740,992 points (9,007,199,254,740,992 (embedding_size)); the grid sampler "
            "takes at most 1,000,000: search fewer values, or use the tpe or random sampler",
        ),
    ],
)
def test_a_grid_too_large_is_refused_before_it_is_listed(world, capsys, keys, message):
    path = space_file(world, "grid.yaml", "\n".join(keys) + "\n")
    started = time.monotonic()
    line = refused(world, capsys, [*tune_args(world, path), "--sampler", "grid"])
    assert line == f"recforge: error: search space grid.yaml: {message}"
    assert time.monotonic() - started < 30


OVERFLOWS = {
    "yaml loguniform 1e400": (
        "space.yaml",
        "embedding_size: [8]\nlearning_rate: {type: loguniform, low: 1e-4, high: 1e400}\n",
        "line 2: 'learning_rate': high must be a finite number, not '1e400'",
    ),
    "yaml uniform low 1e308 high inf": (
        "space.yaml",
        "reg_weight: {type: uniform, low: 1e308, high: inf}\n",
        "line 1: 'reg_weight': high must be a finite number, not 'inf'",
    ),
    "yaml uniform whose range overflows": (
        "space.yaml",
        "learning_rate: {type: uniform, low: -1.5e+308, high: 1.5e+308}\n",
        "line 1: 'learning_rate': high - low (1.5e+308 - -1.5e+308) is beyond the float range; narrow the bounds",
    ),
    "yaml integer beyond the float range": (
        "space.yaml",
        f"embedding_size: {{type: int, low: 1, high: 1{'0' * 400}}}\n",
        f"line 1: 'embedding_size': high must be a finite number, not 1{'0' * 79}... (401 characters)",
    ),
    "yaml int range beyond int64": (
        "space.yaml",
        "embedding_size: {type: int, low: 1, high: 100000000000000000000}\n",
        "line 1: 'embedding_size': int needs high within +-2**53 (9007199254740992), not 1e+20",
    ),
    "yaml quniform step too small": (
        "space.yaml",
        "learning_rate: {type: quniform, low: 0, high: 1, q: 1e-300}\n",
        "line 1: 'learning_rate': quniform needs low / q and high / q within +-2**53, not low 0, high 1, q 1e-300",
    ),
    "hyper.test exponent whose exp() overflows": (
        "space.test",
        "embedding_size choice [8]\nlearning_rate loguniform -8,1000\n",
        "line 2: 'learning_rate': loguniform high exponent 1000 gives exp(1000), beyond the float range (bounds are "
        "exponents of e)",
    ),
    "hyper.test exponent whose exp() is 0": (
        "space.test",
        "learning_rate loguniform -1000,0\n",
        "line 1: 'learning_rate': loguniform low exponent -1000 gives exp(-1000), 0 in floats (bounds are exponents "
        "of e)",
    ),
}


@pytest.mark.parametrize("case", OVERFLOWS, ids=list(OVERFLOWS))
def test_numbers_that_overflow_are_refused_naming_the_key_and_line(world, capsys, case):
    name, content, message = OVERFLOWS[case]
    line = refused(world, capsys, tune_args(world, space_file(world, name, content)))
    assert line == f"recforge: error: search space {name}, {message}"


def test_bytes_that_are_not_utf8_name_the_line(world, capsys):
    for name, content in (
        ("space.yaml", b"learning_rate: {type: loguniform, low: 1e-4, high: 0.5}\nembedding_size: [8, \xff32]\n"),
        ("space.test", b"learning_rate loguniform -8,0\nembedding_size choice [8,\xe932]\n"),
    ):
        line = refused(world, capsys, tune_args(world, space_file(world, name, content)))
        byte = "0xff at byte 21" if name == "space.yaml" else "0xe9 at byte 26"
        assert line == (
            f"recforge: error: search space {name}, line 2: not UTF-8 text (byte {byte} of the line); save the file "
            "as UTF-8"
        )


OVERSIZED = {
    "yaml 1 MB key": (
        "space.yaml",
        "x" * 1_000_000 + ": [1, 2]\n",
        "search space space.yaml, line 1, column 1000001: invalid YAML (mapping values are not allowed here)",
    ),
    "yaml nested 10,000 deep": (
        "space.yaml",
        "embedding_size: " + "[" * 10_000 + "]" * 10_000 + "\n",
        "search space space.yaml: invalid YAML (nested too deeply to be read)",
    ),
    "hyper.test 1 MB key": (
        "space.test",
        "x" * 1_000_000 + " choice [1,2]\n",
        f"search space space.test, line 1: '{'x' * 80}... (1,000,000 characters)': not a config key of BPR",
    ),
    "hyper.test 1 MB value": (
        "space.test",
        "embedding_size choice [" + "8," * 500_000 + "8]\n",
        f"search space space.test, line 1: 'embedding_size': choice lists a value twice: [{'8, ' * 26}8... "
        "(1,500,003 characters)",
    ),
    "hyper.test nested 10,000 deep": (
        "space.test",
        "embedding_size choice " + "[" * 10_000 + "]" * 10_000 + "\n",
        f"search space space.test, line 1: 'embedding_size': choice needs a Python literal list such as [1,2], not "
        f"'{'[' * 79}... (20,002 characters)",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", OVERSIZED, ids=list(OVERSIZED))
def test_oversized_entries_give_one_short_line(world, capsys, case):
    name, content, message = OVERSIZED[case]
    line = refused(world, capsys, tune_args(world, space_file(world, name, content)))
    assert line == f"recforge: error: {message}"


@pytest.mark.slow
def test_a_long_value_is_read_as_it_is(world):
    long = "a" * 1_000_000
    space = read_space(space_file(world, "long.yaml", f"learner: [{long}, adam]\n"))
    assert space["learner"].values == (long, "adam")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "learning_rate: {type: loguniform, low: 1e-4, high: 0.5}\nembedding_size: [8]\n"
            "learning_rate: {type: uniform, low: 0.1, high: 0.2}\n",
            "line 3, column 1: the key 'learning_rate' is written twice (lines 1 and 3); keep one",
        ),
        (
            "embedding_size: [8]\nlearning_rate:\n  type: uniform\n  low: 0.1\n  high: 0.2\n  low: 0.01\n",
            "line 6, column 3: the key 'low' is written twice (lines 4 and 6); keep one",
        ),
    ],
)
def test_a_key_written_twice_is_refused_naming_both_lines(world, capsys, content, message):
    line = refused(world, capsys, tune_args(world, space_file(world, "space.yaml", content)))
    assert line == f"recforge: error: search space space.yaml, {message}"


@pytest.mark.parametrize(("value", "shown"), [("0", "0"), ("-5", "-5"), ("nan", "nan"), ("inf", "inf")])
def test_a_timeout_that_is_not_a_positive_number_of_seconds_is_refused(world, capsys, value, shown):
    folder = world / "never"
    line = refused(world, capsys, [*tune_args(world, world / "good.yaml", folder), "--timeout", value])
    assert line == (
        "recforge: error: timeout must be a positive, finite number of seconds (no new trial starts after it), "
        f"not {shown}"
    )
    assert not folder.exists()
