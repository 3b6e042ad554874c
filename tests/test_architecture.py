"""The house: packages import only from the layers below them (data flows one way, registries sit below what uses
them), and the modules and functions stay small."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from conftest import ROOT

PACKAGE = ROOT / "src" / "recforge"
# Lowest first. A module may import from its own layer and the layers below it, never from a layer above.
LAYERS = [
    ("errors", "utils"),
    ("registry",),
    ("config",),
    ("data",),
    ("models",),
    ("evaluation",),
    ("trainer", "report"),  # the trainer writes its run folder's report; the report reads run folders
    ("serving",),
    ("quick_start", "tuning", "cli", "plugins", "model", "evaluator", "__init__", "__main__"),
]
LAYER_OF = {name: rank for rank, names in enumerate(LAYERS) for name in names}
# RecBole's ``recbole.utils`` facade names get_model / get_trainer, which live in the registry: resolved lazily.
ALLOWED = {("utils/__init__.py", "registry")}
MAX_LINES = 400  # "each file under ~400 lines"
MAX_FUNCTION_LINES = 60  # a function (docstring included) reads on one screen
GENERATED = {"registry/recbole_catalog.py", "config/declarations.py"}


def part_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 or rel.suffix == ".py" else rel.stem


def imported_parts(path: Path) -> set[str]:
    """Top-level recforge sub-packages / modules that ``path`` imports, also inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "recforge" and len(parts) > 1:
                found.add(parts[1])
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_layers_are_known():
    assert {part_of(p) for p in MODULES} <= set(LAYER_OF)


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(PACKAGE)) for p in MODULES])
def test_imports_only_flow_downwards(path):
    own = part_of(path)
    rel = str(path.relative_to(PACKAGE))
    upward = {
        target
        for target in imported_parts(path)
        if target in LAYER_OF and LAYER_OF[target] > LAYER_OF[own] and (rel, target) not in ALLOWED
    }
    assert not upward, f"{rel} ({own}) imports from higher layers {sorted(upward)}"


def test_modules_stay_small():
    sizes = {
        str(p.relative_to(PACKAGE)): len(p.read_text(encoding="utf-8").splitlines())
        for p in MODULES
        if str(p.relative_to(PACKAGE)) not in GENERATED
    }
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_functions_stay_small():
    long = {}
    for path in MODULES:
        rel = str(path.relative_to(PACKAGE))
        if rel in GENERATED:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{rel}:{node.name}"] = lines
    assert long == {}


def _imports_torch(argv: list[str]) -> tuple[bool, str]:
    """Whether ``recforge <argv>`` imports torch, and what it printed."""
    import subprocess
    import sys

    code = (
        "import sys\nfrom recforge.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "print('TORCH', 'torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True)
    return "TORCH True" in done.stdout, done.stdout


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["models"]], ids=" ".join)
def test_the_command_line_answers_without_torch(argv):
    """``recforge --help`` and ``recforge models`` import neither torch nor a model (the catalog and the generated
    declarations answer), so they start in well under half a second."""
    uses_torch, out = _imports_torch(argv)
    assert not uses_torch
    if argv == ["models"]:
        assert any(re.match(r"BPR\s+general\s+pairwise\s+trainer=Trainer", line) for line in out.splitlines())


def test_the_model_declarations_are_current():
    """config/declarations.py is what scripts/generate_declarations.py writes from the classes."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "generate_declarations", ROOT / "scripts" / "generate_declarations.py"
    )
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert generator.render() == (PACKAGE / "config" / "declarations.py").read_text(encoding="utf-8")


def test_the_catalog_names_every_registered_built_in():
    import recforge.models.context
    import recforge.models.general
    import recforge.models.knowledge
    import recforge.models.sequential
    import recforge.models.tree  # noqa: F401 - their decorators register every built-in class
    from recforge.registry import MODELS, catalog

    registered = {name for name, cls in MODELS._entries.values() if cls.__module__.startswith("recforge.models.")}
    assert registered == set(catalog.MODELS)
    assert all(MODELS.is_builtin(name) for name in registered)


DATA = PACKAGE / "data"
# Inside ``recforge.data``, lowest first: files are read, processed into a data set, split and cached, then served
# by loaders; ``data_preparation`` and RecBole's import paths sit on top.
DATA_LAYERS = [
    ("files", "columns", "interaction"),
    ("processing", "features"),
    ("dataset", "knowledge_dataset", "sequential_dataset", "dien_dataset", "kg_seq_dataset"),
    ("split", "cache", "transform"),
    ("loaders",),
    ("preparation", "dataloader", "__init__"),
]
DATA_LAYER_OF = {name: rank for rank, names in enumerate(DATA_LAYERS) for name in names}
DATA_ALLOWED = {("dataset.py", "split")}  # RecBole's ``Dataset.build()`` splits the data set it is called on


def imported_data_parts(path: Path) -> set[str]:
    """The parts of ``recforge.data`` (sub-packages or modules) that ``path`` imports, also inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found |= {name.split(".")[2] for name in names if name.startswith("recforge.data.")}
    return found & set(DATA_LAYER_OF)


DATA_MODULES = sorted(DATA.rglob("*.py"))


@pytest.mark.parametrize("path", DATA_MODULES, ids=[str(p.relative_to(DATA)) for p in DATA_MODULES])
def test_data_flows_from_files_to_loaders(path):
    rel = path.relative_to(DATA)
    own = rel.parts[0].removesuffix(".py")
    assert own in DATA_LAYER_OF, f"data/{rel}: add its part to DATA_LAYERS"
    upward = {
        part
        for part in imported_data_parts(path)
        if DATA_LAYER_OF[part] > DATA_LAYER_OF[own] and (str(rel), part) not in DATA_ALLOWED
    }
    assert not upward, f"data/{rel} ({own}) imports from higher data layers {sorted(upward)}"
