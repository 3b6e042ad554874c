#!/usr/bin/env python3
"""Write ``src/recforge/config/declarations.py``: what every built-in model declares (its type, input type,
trainer and hyper-parameter keys), read from the classes of ``recforge.registry.catalog``.

recforge keeps it in the repository so that ``recforge models`` and the config's key checks read the
declarations without importing the models (nor torch). Regenerate it after changing a built-in model's keys::

    python scripts/generate_declarations.py

``tests/test_architecture.py`` checks that the committed file is what this script writes.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "src" / "recforge" / "config" / "declarations.py"

HEADER = '''"""What each built-in model declares, readable without importing the models (nor torch): its model type, input
type, trainer and hyper-parameter keys (None: it declares none). Generated from the classes of
``recforge.registry.catalog`` by ``scripts/generate_declarations.py``; do not edit by hand, regenerate."""

from recforge.config.types import Anything, Bool, Float, Int, Key, ListOf, Mapping_, Optional, Str  # noqa: F401

DECLARATIONS = {
'''


def render() -> str:
    """The module's text."""
    sys.path.insert(0, str(ROOT / "src"))
    from recforge.registry import catalog

    lines = [HEADER]
    for name, path in sorted(catalog.MODELS.items()):
        module, _, attribute = path.partition(":")
        cls = getattr(importlib.import_module(module), attribute)
        keys = cls.hyper_parameters
        lines.append(f"    {name!r}: {{\n")
        lines.append(f"        'type': {cls.type.name.lower()!r},\n")
        lines.append(f"        'input_type': {cls.input_type.name.lower()!r},\n")
        lines.append(f"        'trainer': {cls.trainer!r},\n")
        if keys is None:
            lines.append("        'keys': None,\n")
        else:
            lines.append("        'keys': (\n")
            lines += [f"            {key!r},\n" for key in keys]
            lines.append("        ),\n")
        lines.append("    },\n")
    lines.append("}\n")
    return "".join(lines)


def main() -> int:
    TARGET.write_text(render(), encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
