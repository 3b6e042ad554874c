"""Time and profile ``trainer.evaluate(valid_data)`` of sequential models on ml-100k (full ranking).

The settings are those of the sequential benchmark (``sequential_bench.py``: RecBole's sequential quick-start,
LS valid_and_test, TO, ``MAX_ITEM_LIST_LENGTH`` 50, Recall / MRR / NDCG / Hit / Precision @10,
``eval_batch_size`` 4096 as ``recforge_driver.py`` sets it). Each model trains ``--epochs`` epochs, then
``evaluate`` runs ``--repeats`` times: the first call (which builds the loader's batches) is reported apart from
the steady state (median of the others). ``--cprofile`` / ``--torch-profile`` print breakdowns of one further
steady-state call (``--profile-first``: of the first call, on a fresh loader).

    python benchmarks/profile_sequential_eval.py --models FPMC,STAMP,SASRec --repeats 10 --cprofile
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sequential_bench import PAIRWISE_ONLY

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="FPMC,STAMP,SASRec", help="comma-separated model names")
    parser.add_argument("--data-path", default=str(DATA))
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=10, help="evaluate calls timed (the first one included)")
    parser.add_argument("--eval-batch-size", type=int, default=4096)
    parser.add_argument("--phase", choices=("valid", "test"), default="valid")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--cprofile", action="store_true", help="cProfile of one call")
    parser.add_argument("--torch-profile", action="store_true", help="torch.profiler table of one call")
    parser.add_argument("--profile-first", action="store_true", help="profile a first call (fresh batches)")
    parser.add_argument("--top", type=int, default=25, help="rows of each profile table")
    return parser.parse_args(argv)


def build(model_name: str, args: argparse.Namespace):
    """``(trainer, valid_data, test_data)`` after ``args.epochs`` epochs of ``model_name``."""
    import torch

    from recforge import Config, create_dataset, data_preparation, get_model_class, get_trainer, init_seed

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = {
        "data_path": args.data_path,
        "seed": 2020,
        "reproducibility": True,
        "epochs": args.epochs,
        "train_batch_size": 2048,
        "eval_batch_size": args.eval_batch_size,
        "show_progress": False,
        "use_gpu": args.device != "cpu",
        "state": "WARNING",
        "data_cache": False,
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full"},
        "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"]},
        "MAX_ITEM_LIST_LENGTH": 50,
        "metrics": ["Recall", "MRR", "NDCG", "Hit", "Precision"],
        "topk": [10],
        "valid_metric": "MRR@10",
    }
    if model_name not in PAIRWISE_ONLY:
        settings["train_neg_sample_args"] = None
    config = Config(model_name, args.dataset, config_dict=settings, cmd_args=[])
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train, valid, test = data_preparation(config, dataset)
    init_seed(config["seed"], config["reproducibility"])
    model = get_model_class(config["model"])(config, train.dataset)
    trainer = get_trainer(type(model))(config, model)
    trainer.fit(train, None, verbose=False, saved=False)
    return trainer, valid, test


def timed_calls(trainer, data, repeats: int) -> tuple[list[float], dict[str, float]]:
    """Wall seconds of ``repeats`` evaluate calls on ``data`` (the first builds its batches) and the last result."""
    seconds, result = [], {}
    for _ in range(repeats):
        started = time.perf_counter()
        result = trainer.evaluate(data, load_best_model=False)
        seconds.append(time.perf_counter() - started)
    return seconds, result


def profile_call(trainer, data, args: argparse.Namespace) -> None:
    """Print the breakdowns asked for, each of one evaluate call."""
    if args.profile_first:
        data._batches = None
    if args.cprofile:
        profiler = cProfile.Profile()
        profiler.enable()
        trainer.evaluate(data, load_best_model=False)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.top)
        if args.profile_first:
            data._batches = None
    if args.torch_profile:
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if args.device != "cpu" else [])
        with profile(activities=activities) as prof:
            trainer.evaluate(data, load_best_model=False)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top))


def main(argv=None) -> None:
    args = parse(argv)
    for name in args.models.split(","):
        trainer, valid, test = build(name, args)
        data = valid if args.phase == "valid" else test
        seconds, result = timed_calls(trainer, data, args.repeats)
        record = {
            "model": name,
            "phase": args.phase,
            "first": seconds[0],
            "steady_median": statistics.median(seconds[1:]) if len(seconds) > 1 else None,
            "steady_min": min(seconds[1:]) if len(seconds) > 1 else None,
            "metrics": result,
        }
        print(json.dumps(record), flush=True)
        profile_call(trainer, data, args)


if __name__ == "__main__":
    main()
