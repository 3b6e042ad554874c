"""What both benchmark drivers share: their command line, peak memory, and timing of trainer methods.

Plain standard library: the RecBole driver imports this module from RecBole's own environment.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable


def parse(description: str, argv=None) -> argparse.Namespace:
    """The drivers' common command line."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--data-path", required=True)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--order", default="RO")
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--train-batch-size", type=int, default=2048)
    parser.add_argument("--eval-users", type=int, default=4096, help="users per full-ranking batch")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a config value, as YAML")
    parser.add_argument("--skip-train", action="store_true", help="evaluate the freshly initialised model only")
    parser.add_argument("--load-only", action="store_true", help="stop after create_dataset + data_preparation")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--labeled",
        action="store_true",
        help="RecBole's context-aware ml-100k settings: labels rating >= 4, labelled evaluation, AUC / LogLoss",
    )
    parser.add_argument(
        "--dgl-shim",
        action="store_true",
        help="RecBole only: let RecBole's KGAT call dgl >= 1.0 with its dgl-0.x keywords (no effect on recforge)",
    )
    parser.add_argument(
        "--scatter-shim",
        action="store_true",
        help="RecBole only: torch_scatter's scatter_mean / scatter_softmax for KGIN and MCCLK (no effect on recforge)",
    )
    return parser.parse_args(argv)


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM), in MB.

    ``resource.getrusage(...).ru_maxrss`` is not used: Linux carries it over fork and exec, so a child started by
    a large parent would report the parent's peak.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def time_method(obj: object, name: str, bucket: list[float]) -> None:
    """Replace ``obj.name`` by a wrapper that appends each call's wall time (seconds) to ``bucket``."""
    original: Callable = getattr(obj, name)

    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            bucket.append(time.perf_counter() - started)

    setattr(obj, name, timed)


def base_record(system: str, args: argparse.Namespace, imported: float, load: float, dataset, threads: int) -> dict:
    """The fields every driver reports first; ``dataset`` counts ids with padding, as RecBole and recforge do."""
    return {
        "system": system,
        "model": args.model,
        "dataset": args.dataset,
        "seed": args.seed,
        "epochs": args.epochs,
        "import": imported,
        "load": load,
        "users": int(dataset.user_num) - 1,
        "items": int(dataset.item_num) - 1,
        "interactions": int(dataset.inter_num),
        "threads": threads,
    }


# RecBole's quick_start_config/context-aware.yaml and context-aware_ml-100k.yaml (context-aware and tree models).
LABELED = {
    "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "group_by": None, "order": "RO", "mode": "labeled"},
    "threshold": {"rating": 4},
    "train_neg_sample_args": None,
    "metrics": ["AUC", "LogLoss"],
    "valid_metric": "AUC",
    "load_col": {
        "inter": ["user_id", "item_id", "rating", "timestamp"],
        "user": ["user_id", "age", "gender", "occupation"],
        "item": ["item_id", "release_year", "class"],
    },
}


def experiment(args: argparse.Namespace, overrides: dict) -> dict:
    """The settings both systems run with (RecBole's key names, which recforge shares), then ``--set`` overrides."""
    if args.labeled:
        return {**_common(args), **LABELED, **overrides}
    return {**_common(args), **overrides}


def _common(args: argparse.Namespace) -> dict:
    return {
        "data_path": args.data_path,
        "seed": args.seed,
        "reproducibility": True,
        "epochs": args.epochs,
        "train_batch_size": args.train_batch_size,
        "stopping_step": 10,
        "show_progress": False,
        "use_gpu": False,
        "state": "WARNING",
        "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "group_by": "user", "order": args.order, "mode": "full"},
        "metrics": ["Recall", "MRR", "NDCG", "Hit", "Precision"],
        "topk": [10],
        "valid_metric": "MRR@10",
    }
