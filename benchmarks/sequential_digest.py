"""A digest of the sequential examples of train / valid / test: each example's user, target, history length and
history as tokens (ids differ between systems; tokens do not), one line per example in the split's order, hashed.

Run with RecBole 1.2.1's Python to write the reference that tests/test_data_sequential_ml100k.py compares recforge
with (the fixture ``tests/data/sequential/ml-100k-recbole.json``)::

    ~/.cache/recforge-peer/recbole-venv/bin/python benchmarks/sequential_digest.py --system recbole \\
        --data-path ../shared/datasets --out tests/data/sequential/ml-100k-recbole.json

and with recforge's (``--system recforge``) to print recforge's. Both read RecBole's stock ml-100k.yaml (its
``normalize_all: True`` scales the timestamps to [0, 1], where float32 rounding ties many of them) and a
sequential model's defaults (GRU4Rec: leave-one-out ``valid_and_test``, order TO, ``MAX_ITEM_LIST_LENGTH`` 50).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STOCK_YAML = ROOT.parent / "shared" / "recbole-properties" / "dataset" / "ml-100k.yaml"


def split_lines(dataset) -> list[str]:
    """One line per example: ``user target length h1 h2 ...`` (tokens; the history without padding)."""
    table = dataset.inter_feat
    users = dataset.field2id_token[dataset.uid_field][_array(table[dataset.uid_field])]
    items = dataset.field2id_token[dataset.iid_field]
    targets = items[_array(table[dataset.iid_field])]
    lengths = _array(table[dataset.item_list_length_field])
    histories = _array(table[dataset.item_id_list_field])
    return [
        " ".join([str(u), str(t), str(n), *map(str, items[h[:n]])])
        for u, t, n, h in zip(users, targets, lengths, histories, strict=True)
    ]


def _array(column):
    return column.numpy() if hasattr(column, "numpy") else column


def digest(parts) -> dict:
    out = {}
    for name, part in zip(("train", "valid", "test"), parts, strict=True):
        lines = split_lines(part)
        out[name] = {
            "examples": len(lines),
            "sha256": hashlib.sha256("\n".join(lines).encode()).hexdigest(),
            "first": lines[:3],
            "last": lines[-3:],
        }
    return out


def build(system: str, data_path: str):
    settings = {"data_path": data_path, "MAX_ITEM_LIST_LENGTH": 50, "train_neg_sample_args": None}
    if system == "recbole":
        sys.argv = sys.argv[:1]  # RecBole reads its command line as config
        from recbole.config import Config
        from recbole.data import create_dataset

        config = Config("GRU4Rec", "ml-100k", config_file_list=[str(STOCK_YAML)], config_dict=settings)
        config["data_path"] = str(Path(data_path) / "ml-100k")  # RecBole replaces data_path for ml-100k
    else:
        from recforge import Config, create_dataset

        config = Config(
            "GRU4Rec",
            "ml-100k",
            config_file_list=[str(STOCK_YAML)],
            config_dict={**settings, "data_cache": False},
            cmd_args=[],
        )
    return create_dataset(config).build()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--system", choices=("recbole", "recforge"), required=True)
    parser.add_argument("--data-path", default=str(ROOT.parent / "shared" / "datasets"))
    parser.add_argument("--out", help="write the digest here (JSON); printed otherwise")
    args = parser.parse_args()
    result = {"system": args.system, "dataset": "ml-100k", "splits": digest(build(args.system, args.data_path))}
    text = json.dumps(result, indent=1)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
