"""Sequential data at ml-25m's scale: the synthetic 25,000,000-interaction file of scale_25m.py (162,000 users,
59,000 items), as SASRec reads it.

    python benchmarks/sequential_scale.py [--workdir .bench] [--stages load,epoch-all,epoch-prefix,recbole]
        [--recbole-python PY] [--raw benchmarks/results/sequential-scale.jsonl]

Every stage is a fresh process (its peak memory is its own, VmHWM):

- ``load``: create_dataset + data_preparation without the processed-data cache: the time order, the 24.8M examples
  (one per interaction but each user's first) as windows, the leave-one-out split and the loaders;
- ``epoch-all``: one SASRec epoch (or its first ``--batches-all`` batches, the epoch extrapolated) with
  ``train_all_positions`` (one sequence per user and 50 items, batch 128) and
  gBCE (256 sampled negatives per position: CE would score 59k items at each of ~6,000 positions per batch);
- ``epoch-prefix``: RecBole's training (one example per prefix, batch 2048): the first ``--batches`` batches are
  timed and the epoch is extrapolated from them (a whole epoch takes hours on 2 cores);
- ``recbole``: RecBole 1.2.1's create_dataset + dataset.build() for SASRec on smaller synthetic files of the same
  shape (``--recbole-sizes``), each within ``--recbole-budget`` seconds and the machine's memory, to extrapolate
  how far it gets at 25M.

One JSON line per stage goes to ``--raw``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from synthetic import generate  # noqa: E402

SHAPE = {"interactions": 25_000_000, "users": 162_000, "items": 59_000}
SETTINGS = {
    "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
    "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full"},
    "train_neg_sample_args": None,
    "data_cache": False,
    "show_progress": False,
    "MAX_ITEM_LIST_LENGTH": 50,
}

RECFORGE = r"""
import json, sys, time, statistics
started = time.perf_counter()
import torch
from recforge import Config, create_dataset, data_preparation
from recforge.registry import get_model_class
from recforge.utils import init_seed
stage, path, name, settings, batches = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), int(sys.argv[5])
batches_all = int(sys.argv[6])  # epoch-all: batches timed (0: the whole epoch)
if stage == "epoch-all":  # gBCE: a softmax over 59k items at every position would cost 1.2 GB of logits a batch
    settings.update(train_all_positions=True, train_batch_size=128, loss_type="gBCE")
config = Config("SASRec", name, config_dict={"data_path": path, **settings}, cmd_args=[])
t = time.perf_counter()
dataset = create_dataset(config)
train, valid, test = data_preparation(config, dataset)
record = {"stage": stage, "load": time.perf_counter() - t, "examples": dataset.inter_num}
record["train_rows"] = train.dataset.inter_num
if stage != "load":
    init_seed(config["seed"])
    model = get_model_class("SASRec")(config, train.dataset)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    cap = min(len(train), batches if stage == "epoch-prefix" else batches_all or len(train))
    times, t = [], time.perf_counter()
    for i, batch in enumerate(train):
        if i == cap:
            break
        loss = model.calculate_loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    elapsed = time.perf_counter() - t
    record.update(batches=cap, of_batches=len(train), seconds=elapsed, epoch=elapsed * len(train) / cap)
record["peak_rss_mb"] = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024
print(json.dumps(record))
"""

RECBOLE = r"""
import json, sys, time
path, name = sys.argv[1], sys.argv[2]
sys.argv = sys.argv[:1]  # RecBole reads its command line as config
from recbole.config import Config
from recbole.data import create_dataset
t = time.perf_counter()
settings = {"data_path": path, "load_col": {"inter": ["user_id", "item_id", "timestamp"]}}
settings.update(train_neg_sample_args=None, MAX_ITEM_LIST_LENGTH=50, show_progress=False)
config = Config("SASRec", name, config_dict=settings)
dataset = create_dataset(config)
parts = dataset.build()
record = {"stage": "recbole", "dataset": name, "load": time.perf_counter() - t, "examples": len(dataset.inter_feat)}
record["peak_rss_mb"] = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024
print(json.dumps(record))
"""


def run(command: list[str], timeout: int) -> dict:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        return {"error": f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1:]}"}
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=ROOT / ".bench")
    parser.add_argument("--stages", default="load,epoch-all,epoch-prefix")
    parser.add_argument("--batches", type=int, default=30, help="batches timed by epoch-prefix")
    parser.add_argument(
        "--batches-all", type=int, default=0, help="batches timed by epoch-all, the epoch extrapolated (0: all)"
    )
    parser.add_argument("--recbole-python", default=os.environ.get("RECBOLE_PYTHON"))
    parser.add_argument("--recbole-sizes", default="1000000,2000000,4000000")
    parser.add_argument("--recbole-budget", type=int, default=1800)
    parser.add_argument("--raw", type=Path, default=HERE / "results" / "sequential-scale.jsonl")
    args = parser.parse_args()
    data = args.workdir.resolve() / "data"
    args.raw.parent.mkdir(parents=True, exist_ok=True)
    name = "synthetic-25000k"
    if not (data / name / f"{name}.inter").is_file():
        generate(data, **SHAPE)
    for stage in args.stages.split(","):
        if stage == "recbole":
            for size in map(int, args.recbole_sizes.split(",")):
                small = f"synthetic-{size // 1000}k"
                if not (data / small / f"{small}.inter").is_file():
                    scale = size / SHAPE["interactions"]
                    generate(data, size, int(SHAPE["users"] * scale), int(SHAPE["items"] * scale**0.5))
                record = run([args.recbole_python, "-c", RECBOLE, str(data), small], args.recbole_budget)
                _emit(args.raw, {"stage": "recbole", "dataset": small, "interactions": size, **record})
            continue
        command = [sys.executable, "-c", RECFORGE, stage, str(data), name, json.dumps(SETTINGS), str(args.batches)]
        command.append(str(args.batches_all))
        _emit(args.raw, {"dataset": name, **run(command, 7200), "stage": stage})


def _emit(raw: Path, record: dict) -> None:
    print(json.dumps(record), flush=True)
    with open(raw, "a") as handle:
        handle.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
