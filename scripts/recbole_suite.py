"""Run RecBole 1.2.1's own test suite against recforge, with only the import lines rewritten.

    python scripts/recbole_suite.py [--source ../shared/recbole-tests] [--keep DIR] [pytest arguments ...]

The suite (an unchanged copy of RecBole's ``tests/`` folder, MIT) is copied into a temporary folder; every line
that imports ``recbole`` imports ``recforge`` instead, nothing else changes. Deselected: the tests of models
recforge does not implement yet (found by reading each test's ``"model"`` setting, so a family's tests run as soon
as its models are registered), the folders this script does not run (``hyper_tuning``: RecBole's Ray / hyperopt
tuner) and the tests in ``DIFFERENCES``, each with the row of docs/architecture.md that explains it. Exits with
pytest's status.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared" / "recbole-tests"
FOLDERS = ("data", "metrics", "evaluation_setting", "config", "model")
IMPORT = re.compile(r"^(\s*)(from|import)(\s+)recbole(?=[.\s])", re.MULTILINE)
# Tests that meet a deliberate difference from RecBole: node id -> the row of docs/architecture.md that explains it.
DIFFERENCES: dict[str, str] = {}


def rewrite_imports(text: str) -> str:
    """``from recbole.x import y`` -> ``from recforge.x import y`` (and ``import recbole...``); nothing else."""
    return IMPORT.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}recforge", text)


def copy_suite(source: Path, target: Path) -> None:
    """The suite in ``target`` with its imports rewritten (fixtures copied as they are)."""
    shutil.copytree(source, target)
    for path in target.rglob("*.py"):
        path.write_text(rewrite_imports(path.read_text(encoding="utf-8")), encoding="utf-8")


def model_tests(path: Path) -> list[tuple[str, str]]:
    """``(node id relative to the suite, model name)`` of every test method whose config names a model."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for cls in (node for node in tree.body if isinstance(node, ast.ClassDef)):
        for method in (n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test")):
            for node in ast.walk(method):
                if isinstance(node, ast.Dict):
                    for key, value in zip(node.keys, node.values, strict=True):
                        if isinstance(key, ast.Constant) and key.value == "model" and isinstance(value, ast.Constant):
                            found.append((f"{path.parent.name}/{path.name}::{cls.name}::{method.name}", value.value))
                            break
    return found


def missing_models(suite: Path) -> dict[str, str]:
    """Node ids of the model tests whose model recforge does not implement yet -> the model."""
    from recforge.registry import MODELS

    import recforge  # noqa: F401 - registers the built-in models

    out = {}
    for path in sorted(p for folder in FOLDERS for p in (suite / folder).glob("test_*.py")):
        for node, model in model_tests(path):
            if MODELS.find(model) is None:
                out[node] = model
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=Path(os.environ.get("RECBOLE_TESTS", DEFAULT_SOURCE)))
    parser.add_argument("--keep", type=Path, help="copy the suite here (kept) instead of a temporary folder")
    args, pytest_args = parser.parse_known_args(argv)
    if not (args.source / "model" / "test_model_auto.py").is_file():
        print(f"recbole_suite: RecBole's tests not found in {args.source}", file=sys.stderr)
        return 2
    work = args.keep or Path(tempfile.mkdtemp(prefix="recbole-suite-"))
    suite = work / "tests"
    if suite.exists():
        shutil.rmtree(suite)
    copy_suite(args.source, suite)
    deselect = {**missing_models(suite), **DIFFERENCES}
    (work / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n", encoding="utf-8")
    command = [sys.executable, "-m", "pytest", "-q", *(f"tests/{f}" for f in FOLDERS)]
    command += [f"--deselect=tests/{node}" for node in sorted(deselect)]
    print(f"recbole_suite: {len(deselect)} tests deselected ({len(DIFFERENCES)} deliberate differences)", flush=True)
    try:
        return subprocess.run([*command, *pytest_args], cwd=work, check=False).returncode
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
