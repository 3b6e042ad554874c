"""Run one RecBole 1.2.1 scenario and print one JSON line of measurements (the peer side of compare.py).

Runs inside a RecBole environment (see ../shared/peer/setup_recbole_venv.sh) and imports nothing from
recforge. Stages and fields match ``recforge_driver.py``: ``import``, ``load`` (create_dataset +
data_preparation), ``epoch`` (median ``_train_epoch``), ``eval`` (median ``_valid_epoch``), ``test`` (final test
evaluation), ``peak_rss_mb`` and the test ``metrics``.

    $RECBOLE_PYTHON benchmarks/recbole_driver.py --model BPR --dataset ml-100k --data-path ../shared/datasets

RecBole quirks handled here: it parses ``sys.argv`` as config (cleared first); it ignores ``data_path`` for
ml-100k (set again after Config); its checkpoints pickle the Config, which torch >= 2.6 refuses to load
(``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``); ``eval_batch_size`` counts user x item cells (set from ``--eval-users``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

STARTED = time.perf_counter()


def peak_rss_mb() -> float:
    """Peak resident memory (VmHWM) in MB; ru_maxrss would carry over the parent's peak across fork + exec."""
    with open("/proc/self/status") as status:
        lines = status.read().splitlines()
    for line in lines:
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


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
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="YAML value")
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--load-only", action="store_true", help="stop after create_dataset + data_preparation")
    parser.add_argument("--threads", type=int, default=None)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse(argv)
    sys.argv = sys.argv[:1]
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    workdir = tempfile.mkdtemp(prefix="recbole-bench-")
    os.chdir(workdir)  # RecBole writes log/ and saved/ into the working directory
    import logging

    import torch
    import yaml
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    imported = time.perf_counter() - STARTED
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    config = Config(
        model=args.model,
        dataset=args.dataset,
        config_dict={
            "data_path": args.data_path,
            "seed": args.seed,
            "reproducibility": True,
            "epochs": args.epochs,
            "train_batch_size": args.train_batch_size,
            "stopping_step": 10,
            "show_progress": False,
            "use_gpu": False,
            "gpu_id": "",
            "state": "WARNING",
            "checkpoint_dir": os.path.join(workdir, "saved"),
            "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "group_by": "user", "order": args.order, "mode": "full"},
            "metrics": ["Recall", "MRR", "NDCG", "Hit", "Precision"],
            "topk": [10],
            "valid_metric": "MRR@10",
            **overrides,
        },
    )
    config["data_path"] = os.path.join(args.data_path, args.dataset)
    logging.getLogger().setLevel(logging.WARNING)
    init_seed(config["seed"], config["reproducibility"])
    started = time.perf_counter()
    dataset = create_dataset(config)
    # recforge counts users per evaluation batch; RecBole counts user x item cells.
    config["eval_batch_size"] = max(args.eval_users, 1) * int(dataset.item_num)
    train, valid, test = data_preparation(config, dataset)
    load = time.perf_counter() - started
    record = {
        "system": "recbole",
        "model": args.model,
        "dataset": args.dataset,
        "seed": args.seed,
        "import": imported,
        "load": load,
        "users": int(dataset.user_num) - 1,
        "items": int(dataset.item_num) - 1,
        "interactions": int(dataset.inter_num),
        "threads": torch.get_num_threads(),
    }
    if not args.load_only:
        init_seed(config["seed"], config["reproducibility"])
        model = get_model(config["model"])(config, train._dataset).to(config["device"])
        trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
        epochs, evals = [], []
        for name, bucket in (("_train_epoch", epochs), ("_valid_epoch", evals)):
            original = getattr(trainer, name)

            def timed(*a, _original=original, _bucket=bucket, **k):
                t = time.perf_counter()
                try:
                    return _original(*a, **k)
                finally:
                    _bucket.append(time.perf_counter() - t)

            setattr(trainer, name, timed)
        fit = 0.0
        if not args.skip_train:
            started = time.perf_counter()
            trainer.fit(train, valid, verbose=False, saved=True, show_progress=False)
            fit = time.perf_counter() - started
        started = time.perf_counter()
        result = trainer.evaluate(test, load_best_model=not args.skip_train, show_progress=False)
        record.update(
            fit=fit,
            test=time.perf_counter() - started,
            epoch=statistics.median(epochs) if epochs else None,
            eval=statistics.median(evals) if evals else None,
            epochs_run=len(epochs),
            metrics={k: float(v) for k, v in result.items()},
        )
    record["peak_rss_mb"] = peak_rss_mb()
    sys.stdout.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
