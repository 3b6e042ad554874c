"""Evaluation semantics side by side: recforge and RecBole 1.2.1 score the same Pop model on the same split.

Pop is deterministic, so every metric must agree, except where recforge differs on purpose (ItemCoverage and
GiniIndex count the padding item in RecBole; docs/architecture.md). Two data sets, both built from
``ml-100k.inter`` with timestamps replaced by their rank (RecBole keeps timestamps as float32, which would merge
distinct times and change its time-ordered split):

- ``sem-100k``: ml-100k itself;
- ``sem-repeat``: ml-100k plus a second, later copy of 15 % of its rows (repeat consumption), so that many test
  positives were already seen in training (RecBole masks the history minus the positives).

RecBole runs in its own environment (../shared/peer/setup_recbole_venv.sh) with ``train_batch_size: 1`` and no
negative sampling, so that its Pop counts every training interaction (it counts an item once per batch), and
with a run-time fix for its Collector (stock 1.2.1 fails on ItemCoverage, AveragePopularity, GiniIndex and
TailPercentage: ``'int' object has no attribute 'cpu'``, RecBole #2131 / #2191).

    python benchmarks/semantics.py --data-path ../shared/datasets --out benchmarks/results/semantics.md
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

METRICS = ["Recall", "MRR", "NDCG", "Hit", "Precision", "MAP", "ItemCoverage", "AveragePopularity", "GiniIndex",
           "ShannonEntropy", "TailPercentage"]  # fmt: skip
SETTINGS = {
    "rm_dup_inter": None,
    "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "group_by": "user", "order": "TO", "mode": "full"},
    "train_neg_sample_args": None,
    "epochs": 1,
    "metrics": METRICS,
    "topk": [10, 50],
    "valid_metric": "MRR@10",
    "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"]},
    "user_inter_num_interval": "[0,inf)",
    "item_inter_num_interval": "[0,inf)",
    "normalize_all": False,
    "seed": 2020,
    "show_progress": False,
}
DIFFERENT_ON_PURPOSE = ("itemcoverage", "giniindex")

RECBOLE_DRIVER = r"""
import copy, json, os, sys
import torch
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.evaluator.collector import Collector
from recbole.utils import get_model, get_trainer, init_seed

def get_data_struct(self):  # RecBole's own method, moving only tensors to the CPU (#2131, #2191)
    for key, value in self.data_struct._data_dict.items():
        if isinstance(value, torch.Tensor):
            self.data_struct._data_dict[key] = value.cpu()
    returned = copy.deepcopy(self.data_struct)
    for key in ["rec.topk", "rec.meanrank", "rec.score", "rec.items", "data.label"]:
        if key in self.data_struct:
            del self.data_struct[key]
    return returned

Collector.get_data_struct = get_data_struct
name, data_path, settings = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
sys.argv = sys.argv[:1]
settings.update(data_path=data_path, use_gpu=False, train_batch_size=1, metric_decimal_place=17,
                checkpoint_dir=os.path.join(os.getcwd(), "saved"))
config = Config(model="Pop", dataset=name, config_dict=settings)
init_seed(config["seed"], config["reproducibility"])
train, valid, test = data_preparation(config, create_dataset(config))
init_seed(config["seed"], config["reproducibility"])
model = get_model("Pop")(config, train._dataset)
trainer = get_trainer(config["MODEL_TYPE"], "Pop")(config, model)
_, valid_result = trainer.fit(train, valid, saved=False, show_progress=False)
test_result = trainer.evaluate(test, load_best_model=False, show_progress=False)
print(json.dumps({"valid": dict(valid_result), "test": dict(test_result)}))
"""


def write_data(source: Path, root: Path) -> list[str]:
    """``sem-100k`` and ``sem-repeat`` under ``root`` (see the module docstring); returns their names."""
    lines = source.read_text(encoding="utf-8").splitlines()
    rows = [line.split("\t") for line in lines[1:]]
    repeated = np.sort(np.random.default_rng(7).choice(len(rows), size=int(0.15 * len(rows)), replace=False))
    later = [[u, i, r, str(float(t) + 1_000_000)] for u, i, r, t in (rows[k] for k in repeated)]
    for name, table in (("sem-100k", rows), ("sem-repeat", rows + later)):
        times = np.array([float(row[3]) for row in table])
        rank = np.searchsorted(np.unique(times), times)  # exact in float32, same order and ties
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        body = "".join(f"{u}\t{i}\t{r}\t{k}\n" for (u, i, r, _), k in zip(table, rank.tolist(), strict=True))
        (folder / f"{name}.inter").write_text(lines[0] + "\n" + body, encoding="utf-8")
    return ["sem-100k", "sem-repeat"]


def run_recforge(name: str, data_path: Path) -> dict:
    import recforge

    settings = {**SETTINGS, "data_path": str(data_path), "eval_tie_break": "torch_topk", "data_cache": False}
    result = recforge.run("Pop", name, config_dict=settings, saved=False, verbose=False, cmd_args=[])
    return {"valid": result["best_valid_result"], "test": result["test_result"]}


def run_recbole(name: str, data_path: Path, python: str) -> dict:
    env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
    with tempfile.TemporaryDirectory() as workdir:
        done = subprocess.run(
            [python, "-c", RECBOLE_DRIVER, name, str(data_path), json.dumps(SETTINGS)],
            cwd=workdir, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
    if done.returncode:
        raise SystemExit(f"RecBole failed on {name}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(results: dict) -> str:
    lines = ["| data | split | metric | recforge | RecBole | same |", "|---|---|---|---|---|---|"]
    for name, (ours, theirs) in results.items():
        for phase in ("valid", "test"):
            for key, value in ours[phase].items():
                other = theirs[phase][key]
                same = "yes" if abs(value - other) <= 1e-12 else ("on purpose" if key.split("@")[0] in
                                                                   DIFFERENT_ON_PURPOSE else "NO")  # fmt: skip
                lines.append(f"| {name} | {phase} | {key} | {value:.10f} | {other:.10f} | {same} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-path", type=Path, default=Path("../shared/datasets"), help="holds ml-100k/")
    parser.add_argument("--recbole-python", default=str(Path.home() / ".cache/recforge-peer/recbole-venv/bin/python"))
    parser.add_argument("--out", type=Path, help="also write the table (Markdown) here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        names = write_data(args.data_path / "ml-100k" / "ml-100k.inter", root)
        results = {name: (run_recforge(name, root), run_recbole(name, root, args.recbole_python)) for name in names}
    table = report(results)
    print(table)
    if args.out:
        import datetime

        header = (
            f"# Evaluation semantics: recforge and RecBole 1.2.1, Pop, {datetime.date.today()}\n\n"
            f"`python benchmarks/semantics.py --data-path {args.data_path}` (see the script's docstring). Every "
            "metric agrees to 1e-12 except ItemCoverage and GiniIndex, which RecBole computes over the item count "
            "including the padding id (a deliberate difference, docs/architecture.md).\n\n"
        )
        args.out.write_text(header + table, encoding="utf-8")
    return 1 if "| NO |" in table else 0


if __name__ == "__main__":
    sys.exit(main())
