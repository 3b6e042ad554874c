"""The framework-free lower bound: a minimal hand-written BPR loop and a bare matmul + top-k evaluation.

    python benchmarks/floor.py bpr --data-path ../shared/datasets --dataset ml-100k [--epochs 5]
    python benchmarks/floor.py score --users 200000 --items 50000 [--batch-users 4096]

``bpr``: the interactions read with pyarrow into tensors once; a random 80/10/10 split per user; each epoch a
permutation, one uniform negative per positive (no check against the user's items), batches of 2048, 64-d
embeddings, ``torch.optim.Adam`` (lr 0.001) with its defaults. ``eval`` is the validation users' scores
(``users @ items.T``) and ``topk(10)``, nothing else (no masking, no metrics). ``score``: the same bare
scoring for a synthetic catalogue, in batches of users. Prints one JSON line like the drivers (system
"floor"). Imports nothing from recforge.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

STARTED = time.perf_counter()
sys.path.insert(0, str(Path(__file__).resolve().parent))
from driver_common import peak_rss_mb  # noqa: E402


def bpr(args: argparse.Namespace) -> dict:
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import torch

    imported = time.perf_counter() - STARTED
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    path = f"{args.data_path}/{args.dataset}/{args.dataset}.inter"
    table = pa_csv.read_csv(
        path,
        read_options=pa_csv.ReadOptions(skip_rows=1, column_names=["u", "i", "r", "t"]),
        parse_options=pa_csv.ParseOptions(delimiter="\t"),
        convert_options=pa_csv.ConvertOptions(
            column_types={"u": pa.string(), "i": pa.string()}, include_columns=["u", "i"]
        ),
    )
    _, users = np.unique(table.column("u").to_numpy(zero_copy_only=False), return_inverse=True)
    _, items = np.unique(table.column("i").to_numpy(zero_copy_only=False), return_inverse=True)
    n_users, n_items = int(users.max()) + 1, int(items.max()) + 1
    order = np.lexsort((rng.random(len(users)), users))
    rank = np.empty(len(users), dtype=np.int64)
    counts = np.bincount(users)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank[order] = np.arange(len(users)) - starts[users[order]]
    share = rank / counts[users]
    train = share < 0.8
    valid_users = torch.from_numpy(np.unique(users[(share >= 0.8) & (share < 0.9)]))
    train_u = torch.from_numpy(users[train])
    train_i = torch.from_numpy(items[train])
    load = time.perf_counter() - started

    user_emb = torch.nn.Embedding(n_users, 64)
    item_emb = torch.nn.Embedding(n_items, 64)
    torch.nn.init.xavier_normal_(user_emb.weight)
    torch.nn.init.xavier_normal_(item_emb.weight)
    optimizer = torch.optim.Adam([*user_emb.parameters(), *item_emb.parameters()], lr=0.001)
    epochs = []
    for _ in range(args.epochs):
        started = time.perf_counter()
        perm = torch.randperm(len(train_u))
        negatives = torch.randint(0, n_items, (len(train_u),))
        for start in range(0, len(perm), args.batch_size):
            idx = perm[start : start + args.batch_size]
            u = user_emb(train_u[idx])
            diff = (u * item_emb(train_i[idx])).sum(-1) - (u * item_emb(negatives[idx])).sum(-1)
            loss = -torch.log(1e-10 + torch.sigmoid(diff)).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        epochs.append(time.perf_counter() - started)
    evals = []
    with torch.no_grad():
        for _ in range(args.epochs):
            started = time.perf_counter()
            scores = user_emb.weight[valid_users] @ item_emb.weight.T
            torch.topk(scores, 10, dim=1)
            evals.append(time.perf_counter() - started)
    return {
        "system": "floor",
        "model": "BPR",
        "dataset": args.dataset,
        "seed": args.seed,
        "import": imported,
        "load": load,
        "epoch": statistics.median(epochs),
        "eval": statistics.median(evals),
        "epochs_run": len(epochs),
        "users": n_users,
        "items": n_items,
        "interactions": len(users),
        "threads": torch.get_num_threads(),
    }


def score(args: argparse.Namespace) -> dict:
    import torch

    imported = time.perf_counter() - STARTED
    torch.manual_seed(args.seed)
    users = torch.randn(args.users, 64)
    items = torch.randn(args.items, 64)
    started = time.perf_counter()
    with torch.no_grad():
        for start in range(0, args.users, args.batch_users):
            torch.topk(users[start : start + args.batch_users] @ items.T, 10, dim=1)
    return {
        "system": "floor",
        "model": "BPR",
        "dataset": f"random-{args.users}x{args.items}",
        "seed": args.seed,
        "import": imported,
        "test": time.perf_counter() - started,
        "users": args.users,
        "items": args.items,
        "threads": torch.get_num_threads(),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    one = sub.add_parser("bpr")
    one.add_argument("--data-path", required=True)
    one.add_argument("--dataset", default="ml-100k")
    one.add_argument("--epochs", type=int, default=5)
    one.add_argument("--batch-size", type=int, default=2048)
    one.add_argument("--seed", type=int, default=2020)
    two = sub.add_parser("score")
    two.add_argument("--users", type=int, required=True)
    two.add_argument("--items", type=int, required=True)
    two.add_argument("--batch-users", type=int, default=4096)
    two.add_argument("--seed", type=int, default=2020)
    args = parser.parse_args(argv)
    record = bpr(args) if args.mode == "bpr" else score(args)
    record["peak_rss_mb"] = peak_rss_mb()
    sys.stdout.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
