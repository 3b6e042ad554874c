"""The command line of tuning: ``recforge tune``."""

from __future__ import annotations

import argparse
import sys


def add_tune_parser(sub, parents: list[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    tune = sub.add_parser(
        "tune",
        parents=parents,
        help="search hyper-parameters with Optuna on the validation split; fixed config keys follow as --key value",
    )
    tune.add_argument("--model", help="model name, e.g. BPR")
    tune.add_argument("--dataset", help="data set name, e.g. ml-100k")
    tune.add_argument("--space", required=True, help="search space: YAML, or RecBole's hyper.test format")
    tune.add_argument(
        "--trials", type=int, default=20, help="finished (complete or pruned) trials the study should hold"
    )
    tune.add_argument(
        "--study-dir",
        "--study_dir",
        dest="study_dir",
        help="the study folder (default <checkpoint_dir>/<Model>-<dataset>-study)",
    )
    tune.add_argument("--storage", help="an Optuna storage URL (default sqlite:///<study dir>/study.db)")
    tune.add_argument("--study-name", "--study_name", dest="study_name", help="default <Model>-<dataset>")
    tune.add_argument("--sampler", choices=("tpe", "random", "grid"), default="tpe")
    tune.add_argument("--pruner", choices=("median", "none"), default="median")
    tune.add_argument(
        "--timeout", type=float, help="seconds after which no new trial starts (the running one finishes); > 0"
    )
    tune.add_argument("--config_files", "--config-files", nargs="+", help="YAML config files, applied in order")
    tune.add_argument("--verbose", action="store_true", help="log every trial's epochs, as recforge run does")
    tune.add_argument("--no-cache", action="store_true", help="process the data set afresh (data_cache: false)")
    return tune


def tune_command(args: argparse.Namespace, extra: list[str]) -> int:
    """``recforge tune``: run the study, print its summary; 130 when interrupted (the same command continues)."""
    from recforge.tuning import tune
    from recforge.tuning.results import format_summary
    from recforge.tuning.trial import TrialInterrupted

    if args.no_cache:
        extra = [*extra, "--data_cache", "false"]
    try:
        result = tune(
            args.model,
            args.dataset,
            space=args.space,
            trials=args.trials,
            study_dir=args.study_dir,
            storage=args.storage,
            study_name=args.study_name,
            sampler=args.sampler,
            pruner=args.pruner,
            timeout=args.timeout,
            config_file_list=[f for spec in args.config_files or [] for f in spec.split()] or None,
            cmd_args=extra,
            verbose=args.verbose,
        )
    except KeyboardInterrupt as exc:  # the trial's own advice (recforge run --resume) is not printed: see trial.py
        why = f" ({exc})" if isinstance(exc, TrialInterrupted) else ""
        print(f"recforge: study interrupted; the same command continues it{why}", file=sys.stderr)
        return 130
    print(format_summary(result))
    return 0
