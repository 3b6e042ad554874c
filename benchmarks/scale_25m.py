"""One machine at ml-25m's scale: a synthetic 25,000,000-interaction file (162,000 users, 59,000 items).

    python benchmarks/scale_25m.py [--workdir .bench]
        [--stages load,cache,epoch-sparse_adam,eval,ddp-sparse_adam,recbole]
        [--recbole-python PY] [--raw benchmarks/results/scale-25m.jsonl]

Every stage is a fresh process (its peak memory is its own; VmHWM): ``load`` = create_dataset + data_preparation
without the processed-data cache, ``cache`` = the same from a warm cache, ``epoch-<learner>`` = BPR epochs (batch
2048, d 64; two epochs: ``first_epoch`` also pays one-time costs such as the first reads of the mapped cache and
the negative sampler's presence table, ``epoch`` is the second) with ``adam`` (dense: every step updates all 14M
embedding parameters) or ``sparse_adam`` (sparse embedding gradients and lazy Adam: only the rows of the batch's
users and items, RecBole's ``learner: sparse_adam``), ``eval`` = a full-ranking evaluation of every test user
against every item next to the floor (the same users scored by one matmul per 4,096 users and ``torch.topk``,
nothing else), ``ddp-<learner>`` = one epoch in 2 processes (``recforge run --nproc 2``; ``ddp`` alone: adam),
``recbole`` = RecBole 1.2.1's create_dataset + data_preparation on the same file within ``--recbole-budget``
seconds. One JSON line per stage goes to ``--raw``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from synthetic import generate  # noqa: E402

NAME = "synthetic-25000k"
SHAPE = {"interactions": 25_000_000, "users": 162_000, "items": 59_000}

PROBE = r"""
import json, sys, time
started = time.perf_counter()
import torch
from recforge import Config, create_dataset, data_preparation, get_model_class, get_trainer
stage, data_path, learner = sys.argv[1], sys.argv[2], sys.argv[3]

def peak_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM:"))

config = Config("BPR", "%(name)s", config_dict={
    "data_path": data_path, "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"]},
    "data_cache": stage != "load", "epochs": 1, "learner": learner, "train_batch_size": 2048,
    "eval_batch_size": 4096, "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "group_by": "user", "order": "RO",
    "mode": "full"}, "metrics": ["Recall", "NDCG"], "topk": [10], "valid_metric": "NDCG@10",
    "show_progress": False, "eval_step": 0}, cmd_args=[])
record = {"stage": stage, "import": time.perf_counter() - started}
t = time.perf_counter(); dataset = create_dataset(config); record["create"] = time.perf_counter() - t
t = time.perf_counter(); train, valid, test = data_preparation(config, dataset)
record["prepare"] = time.perf_counter() - t
record["load"] = record["create"] + record["prepare"]
if stage.startswith("epoch"):
    model = get_model_class("BPR")(config, train.dataset)
    trainer = get_trainer(type(model))(config, model)
    t = time.perf_counter(); trainer._train_epoch(train, 0); record["first_epoch"] = time.perf_counter() - t
    t = time.perf_counter(); trainer._train_epoch(train, 1); record["epoch"] = time.perf_counter() - t
    record["batches"] = len(train)
elif stage == "eval":
    model = get_model_class("BPR")(config, train.dataset)
    trainer = get_trainer(type(model))(config, model)
    t = time.perf_counter(); trainer.evaluate(test, load_best_model=False); record["eval"] = time.perf_counter() - t
    users = test.users
    item_table = model.item_embedding.weight.detach()
    t = time.perf_counter()
    with torch.no_grad():
        for start in range(0, len(users), 4096):
            scores = model.user_embedding(users[start:start + 4096]) @ item_table.T
            torch.topk(scores, 10, dim=1)
    record["floor"] = time.perf_counter() - t
    record["users"] = len(users)
record["peak_mb"] = peak_mb()
print(json.dumps(record))
"""


def probe(stage: str, data_path: Path, learner: str, cache: str) -> dict:
    env = {**os.environ, "RECFORGE_CACHE_DIR": cache, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE % {"name": NAME}, stage, str(data_path), learner],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        return {"stage": stage, "error": (done.stderr.strip().splitlines() or ["failed"])[-1][:300]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def ddp_epoch(data_path: Path, cache: str, work: Path, budget: int, learner: str = "adam") -> dict:
    """One epoch in 2 processes with ``learner``: wall time of ``recforge run --nproc 2 --epochs 1`` (load, the
    epoch, the test evaluation) and the epoch's time from the run's history."""
    folder = work / "ddp-run"
    env = {**os.environ, "RECFORGE_CACHE_DIR": cache, "PYTHONPATH": str(ROOT / "src")}
    command = [
        sys.executable,
        "-m",
        "recforge",
        "run",
        "--model",
        "BPR",
        "--dataset",
        NAME,
        "--data_path",
        str(data_path),
        "--load_col",
        "{inter: [user_id, item_id, rating, timestamp]}",
        "--epochs",
        "1",
        "--eval_step",
        "0",
        "--learner",
        learner,
        "--checkpoint_dir",
        str(folder),
        "--nproc",
        "2",
        "--show_progress",
        "false",
        "--quiet",
        "--eval_args",
        "{split: {RS: [0.8, 0.1, 0.1]}, group_by: user, order: RO, mode: full}",
        "--metrics",
        "[Recall, NDCG]",
        "--topk",
        "[10]",
        "--valid_metric",
        "NDCG@10",
    ]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=budget, check=False)
    except subprocess.TimeoutExpired:
        return {"stage": "ddp", "learner": learner, "error": f"not finished within {budget} s"}
    record = {"stage": "ddp", "learner": learner, "wall": time.perf_counter() - started}
    if done.returncode != 0:
        record["error"] = (done.stderr.strip().splitlines() or ["failed"])[-1][:300]
        return record
    (run_dir,) = folder.iterdir()
    history = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    record["epoch"] = history[0].get("train_seconds")
    return record


def recbole_load(python: str, data_path: Path, budget: int) -> dict:
    command = [
        python,
        str(HERE / "recbole_driver.py"),
        "--model",
        "BPR",
        "--dataset",
        NAME,
        "--data-path",
        str(data_path),
        "--load-only",
        "--set",
        "load_col={inter: [user_id, item_id, rating, timestamp]}",
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=budget, check=False)
    except subprocess.TimeoutExpired:
        return {"stage": "recbole", "error": f"not finished within {budget} s"}
    if done.returncode != 0:
        return {"stage": "recbole", "error": (done.stderr.strip().splitlines() or ["failed"])[-1][:300]}
    record = json.loads(done.stdout.strip().splitlines()[-1])
    return {"stage": "recbole", "load": record["load"], "peak_mb": record["peak_rss_mb"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=ROOT / ".bench")
    parser.add_argument("--stages", default="load,cache,epoch-sparse_adam,eval")
    parser.add_argument("--recbole-python", default=os.environ.get("RECBOLE_PYTHON"))
    parser.add_argument("--recbole-budget", type=int, default=1800)
    parser.add_argument("--ddp-budget", type=int, default=1200)
    parser.add_argument("--raw", type=Path, default=HERE / "results" / "scale-25m.jsonl")
    args = parser.parse_args()
    data_path = args.workdir.resolve() / "data"
    if not (data_path / NAME / f"{NAME}.inter").is_file():
        generate(data_path, SHAPE["interactions"], SHAPE["users"], SHAPE["items"], name=NAME)
    with tempfile.TemporaryDirectory() as cache, open(args.raw, "a") as raw:
        for stage in args.stages.split(","):
            if stage == "cache":
                probe("cache", data_path, "adam", cache)  # fill the cache, then measure
            if stage.startswith("epoch"):
                record = probe(stage, data_path, stage.split("-", 1)[1], cache)
            elif stage.startswith("ddp"):
                learner = stage.split("-", 1)[1] if "-" in stage else "adam"
                record = ddp_epoch(data_path, cache, Path(cache), args.ddp_budget, learner)
            elif stage == "recbole":
                if not args.recbole_python:
                    continue
                record = recbole_load(args.recbole_python, data_path, args.recbole_budget)
            else:
                record = probe(stage, data_path, "adam", cache)
            record["date"] = time.strftime("%Y-%m-%d")
            raw.write(json.dumps(record) + "\n")
            raw.flush()
            print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
