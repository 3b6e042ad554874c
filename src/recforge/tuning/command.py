"""The command line of tuning: ``recforge tune``."""

from __future__ import annotations

import argparse
import sys


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
