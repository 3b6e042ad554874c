"""Generate a synthetic RecBole atomic data set for scale benchmarks.

    python benchmarks/synthetic.py OUT_DIR [--interactions 5000000] [--users 100000] [--items 50000]

Writes ``OUT_DIR/<name>/<name>.inter`` (user_id, item_id, rating, timestamp). Item popularity follows a Zipf-like
law (exponent 0.9) and user activity a log-normal law, as in real logs; pairs may repeat. Deterministic for a seed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv


def generate(out: Path, interactions: int, users: int, items: int, seed: int = 0, name: str | None = None) -> Path:
    """Write the file and return its folder."""
    rng = np.random.default_rng(seed)
    activity = rng.lognormal(mean=0.0, sigma=1.0, size=users)
    user_ids = rng.choice(users, size=interactions, p=activity / activity.sum())
    popularity = 1.0 / np.arange(1, items + 1) ** 0.9
    item_ids = rng.choice(items, size=interactions, p=popularity / popularity.sum())
    item_ids = rng.permutation(items)[item_ids]  # popular items are not simply the low ids
    ratings = rng.integers(1, 6, size=interactions)
    timestamps = 1_500_000_000 + np.sort(rng.integers(0, 100_000_000, size=interactions))
    name = name or f"synthetic-{interactions // 1000}k"
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "user_id": pa.array(np.char.add("u", user_ids.astype(str))),
            "item_id": pa.array(np.char.add("i", item_ids.astype(str))),
            "rating": pa.array(ratings),
            "timestamp": pa.array(timestamps),
        }
    )
    path = folder / f"{name}.inter"
    with open(path, "wb") as handle:
        handle.write(b"user_id:token\titem_id:token\trating:float\ttimestamp:float\n")
        pa_csv.write_csv(table, handle, pa_csv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none"))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--interactions", type=int, default=5_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    folder = generate(args.out, args.interactions, args.users, args.items, args.seed)
    print(folder)


if __name__ == "__main__":
    main()
