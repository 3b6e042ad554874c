"""Run one recforge scenario and print one JSON line of measurements (used by compare.py; one process each).

    python benchmarks/recforge_driver.py --model BPR --dataset ml-100k --data-path ../shared/datasets \
        [--epochs 5] [--order RO] [--seed 2020] [--set key=value ...] [--skip-train]

Stages, timed separately: ``import`` (recforge and torch), ``load`` (create_dataset + data_preparation: read,
filter, remap, split, loaders), ``epoch`` (each ``_train_epoch``; the median is reported), ``eval`` (each
validation ``_valid_epoch``; median), ``test`` (the final test evaluation). ``peak_rss_mb`` is the process's
``ru_maxrss``. ``--skip-train`` evaluates the freshly initialised model only (for scoring benchmarks).
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
from machine import peak_rss_mb  # noqa: E402


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--data-path", required=True)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--order", default="RO")
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--train-batch-size", type=int, default=2048)
    parser.add_argument("--eval-users", type=int, default=4096, help="users per full-ranking batch")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--load-only", action="store_true", help="stop after create_dataset + data_preparation")
    parser.add_argument("--threads", type=int, default=None)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse(argv)
    import torch

    from recforge import Config, create_dataset, data_preparation, get_model_class, init_seed
    from recforge.config.types import parse_text
    from recforge.trainer import Trainer

    imported = time.perf_counter() - STARTED
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {k: parse_text(v) for k, v in (item.split("=", 1) for item in args.set)}
    config = Config(
        args.model,
        args.dataset,
        config_dict={
            "data_path": args.data_path,
            "seed": args.seed,
            "reproducibility": True,
            "epochs": args.epochs,
            "train_batch_size": args.train_batch_size,
            "eval_batch_size": args.eval_users,
            "stopping_step": 10,
            "show_progress": False,
            "data_cache": False,
            "use_gpu": False,
            "state": "WARNING",
            "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "group_by": "user", "order": args.order, "mode": "full"},
            "metrics": ["Recall", "MRR", "NDCG", "Hit", "Precision"],
            "topk": [10],
            "valid_metric": "MRR@10",
            **overrides,
        },
    )
    init_seed(config["seed"], config["reproducibility"])
    started = time.perf_counter()
    dataset = create_dataset(config)
    train, valid, test = data_preparation(config, dataset)
    load = time.perf_counter() - started
    record = {
        "system": "recforge",
        "model": args.model,
        "dataset": args.dataset,
        "seed": args.seed,
        "import": imported,
        "load": load,
        "users": dataset.user_num - 1,
        "items": dataset.item_num - 1,
        "interactions": dataset.inter_num,
        "threads": torch.get_num_threads(),
    }
    if args.load_only:
        record["peak_rss_mb"] = peak_rss_mb()
        sys.stdout.write(json.dumps(record) + "\n")
        return
    init_seed(config["seed"], config["reproducibility"])
    model = get_model_class(config["model"])(config, train.dataset)

    epochs: list[float] = []
    evals: list[float] = []

    class Timed(Trainer):
        def _train_epoch(self, *a, **k):
            t = time.perf_counter()
            try:
                return super()._train_epoch(*a, **k)
            finally:
                epochs.append(time.perf_counter() - t)

        def _valid_epoch(self, *a, **k):
            t = time.perf_counter()
            try:
                return super()._valid_epoch(*a, **k)
            finally:
                evals.append(time.perf_counter() - t)

    trainer = Timed(config, model)
    fit = 0.0
    if not args.skip_train:
        started = time.perf_counter()
        trainer.fit(train, valid, verbose=False, saved=False)
        fit = time.perf_counter() - started
    started = time.perf_counter()
    result = trainer.evaluate(test, load_best_model=not args.skip_train)
    test_seconds = time.perf_counter() - started
    record.update(
        fit=fit,
        test=test_seconds,
        epoch=statistics.median(epochs) if epochs else None,
        eval=statistics.median(evals) if evals else None,
        epochs_run=len(epochs),
        metrics=result,
        peak_rss_mb=peak_rss_mb(),
    )
    sys.stdout.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
