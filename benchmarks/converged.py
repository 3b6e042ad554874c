"""Converged quality on ml-100k: each model trained until early stopping, recforge and RecBole 1.2.1.

Settings (the peer's, ../shared/peer/recbole_run.py): RS 0.8/0.1/0.1 by user, RO order, full ranking, valid
MRR@10, stopping_step 10, at most 300 epochs, batch 2048, Adam lr 0.001, every model's defaults. RecBole's rows
are read from JSON lines its harness wrote (``recbole_run.py --epochs 300 --out FILE``); recforge's are run here.

    python benchmarks/converged.py --data-path ../shared/datasets \
        --recbole ../shared/peer/results-ml100k-converged-2026-11-29.jsonl --recbole more.jsonl \
        --out benchmarks/results/converged-2026-11-29.md
    python benchmarks/converged.py --models "BPR;CKE;KGAT;..." --raw benchmarks/results/converged-knowledge.jsonl \
        --out benchmarks/results/converged-knowledge-2026-11-29.md
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

MODELS = ["BPR", "LightGCN", "NGCF", "SGL", "SimGCL", "SimGCL[lambda=0.005]", "NCL"]
SETTINGS = {
    "epochs": 300,
    "stopping_step": 10,
    "train_batch_size": 2048,
    "eval_batch_size": 4096,
    "learning_rate": 0.001,
    "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "group_by": "user", "order": "RO", "mode": "full"},
    "metrics": ["Recall", "MRR", "NDCG", "Hit", "Precision"],
    "topk": [10],
    "valid_metric": "MRR@10",
    "show_progress": False,
}


def variant(spec: str) -> tuple[str, dict]:
    """``"SimGCL[lambda=0.005]"`` -> ("SimGCL", {"lambda": 0.005})."""
    import yaml

    name, _, rest = spec.partition("[")
    overrides = {}
    for item in filter(None, rest.rstrip("]").split(",")):
        key, _, value = item.partition("=")
        overrides[key.strip()] = yaml.safe_load(value)
    return name, overrides


def run_recforge(spec: str, data_path: Path, work: Path) -> dict:
    import recforge

    model, overrides = variant(spec)
    started = time.perf_counter()
    result = recforge.run(
        model,
        "ml-100k",
        config_dict={**SETTINGS, **overrides, "data_path": str(data_path), "checkpoint_dir": str(work)},
        verbose=False,
        cmd_args=[],
    )
    metrics = json.loads((Path(result["run_dir"]) / "metrics.json").read_text())
    history = [json.loads(line) for line in (Path(result["run_dir"]) / "history.jsonl").read_text().splitlines()]
    return {
        "system": "recforge",
        "model": spec,
        "test": result["test_result"],
        "epochs_run": metrics["epochs_run"],
        "best_epoch": metrics["best_epoch"],
        "median_epoch": statistics.median(r["train_seconds"] for r in history),
        "wall": time.perf_counter() - started,
    }


def read_recbole(paths: list[Path]) -> dict[str, dict]:
    found = {}
    for path in paths:
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record.get("status") == "ok":
                found[record["model"]] = {
                    "test": record["test"],
                    "epochs_run": record.get("epochs_run"),
                    "median_epoch": record.get("timing_s", {}).get("median_epoch"),
                }
    return found


def render(ours: dict[str, dict], theirs: dict[str, dict], models: list[str]) -> str:
    lines = [
        "| model | recforge NDCG@10 | recforge recall@10 / MRR@10 | epochs (best) | RecBole NDCG@10 | RecBole "
        "recall@10 / MRR@10 | RecBole epochs |",
        "|---|---|---|---|---|---|---|",
    ]
    for model in models:
        a, b = ours.get(model), theirs.get(model)
        if a is None and b is None:
            continue
        left = (
            f"{a['test']['ndcg@10']:.4f} | {a['test']['recall@10']:.4f} / {a['test']['mrr@10']:.4f} | "
            f"{a['epochs_run']} ({a['best_epoch']})"
            if a
            else "— | — | —"
        )
        right = (
            f"{b['test']['ndcg@10']:.4f} | {b['test']['recall@10']:.4f} / {b['test']['mrr@10']:.4f} | {b['epochs_run']}"
            if b
            else ("not in RecBole 1.2.1" if model.startswith("SimGCL") else "not measured") + " | — | —"
        )
        lines.append(f"| {model} | {left} | {right} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-path", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--recbole", type=Path, action="append", default=[], help="RecBole JSON lines (repeatable)")
    parser.add_argument("--models", default=";".join(MODELS), help="';'-separated, e.g. 'BPR;SimGCL[lambda=0.005]'")
    parser.add_argument("--work", type=Path, default=Path(".bench/converged"))
    parser.add_argument("--raw", type=Path, default=Path("benchmarks/results/converged.jsonl"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    ours = {}
    if args.raw.is_file():  # a run continues where an earlier one stopped
        ours = {r["model"]: r for r in map(json.loads, args.raw.read_text().splitlines())}
    for model in args.models.split(";"):
        if model in ours:
            continue
        ours[model] = run_recforge(model, args.data_path.resolve(), args.work.resolve())
        with open(args.raw, "a") as handle:
            handle.write(json.dumps(ours[model]) + "\n")
        print(model, ours[model]["test"], ours[model]["epochs_run"], flush=True)
    table = render(ours, read_recbole(args.recbole), args.models.split(";"))
    print(table)
    if args.out:
        args.out.write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
