#!/usr/bin/env python3
"""Write ``src/recforge/registry/recbole_catalog.py``: RecBole 1.2.1's config key names, read from its own
``properties`` folder (RecBole's MIT-licensed YAML files: overall.yaml, dataset/*.yaml, model/*.yaml,
quick_start_config/*.yaml).

recforge keeps this catalog in the repository so that telling a RecBole key from a typo does not depend on
RecBole or its files being present. Regenerate it when following a new RecBole release::

    python scripts/generate_recbole_catalog.py ../shared/recbole-properties

``tests/test_recbole_configs.py`` checks that the committed catalog is what this script writes.
"""

from __future__ import annotations

import argparse
import pprint
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "src" / "recforge" / "registry" / "recbole_catalog.py"
URL_FILES = ("dataset/url.yaml", "dataset/kg_url.yaml")
DEFAULT_FILES = ("overall.yaml", "dataset/sample.yaml")

HEADER = '''"""RecBole {version}'s configuration names, generated from its ``properties`` folder (MIT licence) by
``scripts/generate_recbole_catalog.py``. Do not edit by hand: regenerate.

- ``SETTING_FILES``: the keys of each global, data-set and quick-start file;
- ``DEFAULTS``: the values of ``overall.yaml`` and ``dataset/sample.yaml`` (RecBole's defaults);
- ``MODEL_KEYS``: each model's hyper-parameters (``model/<Model>.yaml``), by RecBole's model name;
- ``DATASET_URL_FILES``: the data-set download lists (their keys are data-set names, not settings).
"""

'''


def _read(path: Path) -> dict:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise SystemExit(f"{path}: not a mapping")
    return data


def render(properties: Path, version: str) -> str:
    """The catalog module's source for the properties folder ``properties``."""
    files = sorted(p for p in properties.rglob("*.yaml"))
    setting_files: dict[str, tuple[str, ...]] = {}
    model_keys: dict[str, tuple[str, ...]] = {}
    url_files: dict[str, tuple[str, ...]] = {}
    defaults: dict[str, object] = {}
    for path in files:
        rel = path.relative_to(properties).as_posix()
        keys = tuple(str(k) for k in _read(path))
        if rel in URL_FILES:
            url_files[rel] = keys
        elif rel.startswith("model/"):
            model_keys[path.stem] = keys
        else:
            setting_files[rel] = keys
    for rel in DEFAULT_FILES:
        for key, value in _read(properties / rel).items():
            defaults.setdefault(str(key), value)
    body = [
        HEADER.format(version=version),
        f"RECBOLE_VERSION = {version!r}",
        "",
        f"SETTING_FILES: dict[str, tuple[str, ...]] = {pprint.pformat(setting_files, width=110, compact=True)}",
        "",
        f"DEFAULTS: dict[str, object] = {pprint.pformat(defaults, width=110, compact=True)}",
        "",
        f"MODEL_KEYS: dict[str, tuple[str, ...]] = {pprint.pformat(model_keys, width=110, compact=True)}",
        "",
        f"DATASET_URL_FILES: dict[str, tuple[str, ...]] = {pprint.pformat(url_files, width=110, compact=True)}",
        "",
    ]
    return "\n".join(body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("properties", type=Path, help="RecBole's properties folder (e.g. ../shared/recbole-properties)")
    parser.add_argument("--version", default="1.2.1", help="the RecBole release the folder comes from")
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed catalog differs")
    args = parser.parse_args(argv)
    text = render(args.properties, args.version)
    if args.check:
        same = TARGET.is_file() and TARGET.read_text(encoding="utf-8") == text
        print("catalog is current" if same else f"{TARGET} differs from what {args.properties} gives")
        return 0 if same else 1
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
