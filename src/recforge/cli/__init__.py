"""The ``recforge`` command.

    recforge run --model BPR --dataset ml-latest-small --epochs 20 --learning_rate 0.001   (any config key)
    recforge run --import my_models --model MyModel          (models / trainers of your own)
    recforge evaluate --checkpoint saved/BPR-.../checkpoints/best.pth
    recforge tune --model BPR --dataset ml-100k --space space.yaml --trials 50   (any config key, as for run)
    recforge models
    recforge datasets [--data_path DIR]
    recforge convert-movielens SOURCE_DIR OUT_DIR [--name ml-latest-small] [--overwrite]
    recforge report RUN_DIR [RUN_DIR ...] [-o FILE]          (an HTML report of a run, or a comparison of runs)

Errors in input (config, data, checkpoints) print one line and exit with status 2; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from recforge.errors import RecforgeError, TrainingInterrupted


def main(argv: Sequence[str] | None = None) -> int:
    from recforge.cli.parser import build_parser

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command not in ("run", "evaluate", "tune"):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.debug = args.debug or "--debug" in extra
    debug = args.debug
    extra = [a for a in extra if a != "--debug"]
    args.argv = list(argv) if argv is not None else sys.argv[1:]  # what a launched rank runs again
    try:
        from recforge.plugins import import_modules

        import_modules(getattr(args, "imports", []))
        return args.handler(args, extra)
    except TrainingInterrupted:
        return 130  # the trainer has reported it, with the checkpoint to resume from
    except RecforgeError as exc:
        if debug:
            raise
        return _error(str(exc))
    except KeyboardInterrupt:
        print("recforge: interrupted", file=sys.stderr)
        return 130
    except (OSError, MemoryError, RuntimeError) as exc:
        message = resource_error(exc)
        if debug or message is None:
            raise
        return _error(message)


def _error(message: str) -> int:
    """Report an input error in one line (a rank of ``--nproc N`` leaves it to the launcher, which prints the
    first failing rank's once); returns the exit status 2."""
    import os

    if os.environ.get("RECFORGE_RANK_ERRORS") and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from recforge.trainer.launch import record_error

        record_error(message)
    else:
        print(f"recforge: error: {message}", file=sys.stderr)
    return 2


def rank_main(argv: list[str]) -> None:
    """One process of ``recforge run --nproc N`` (started by torch.distributed's launcher)."""
    from recforge.trainer.launch import finish_rank

    try:
        status = main(argv)
    except Exception as exc:
        finish_rank(exc)
        raise
    finish_rank(status)


def resource_error(exc: BaseException) -> str | None:
    """One line for a failure of the machine rather than of recforge (disk, permissions, memory); None for
    anything else, which is a bug and keeps its traceback."""
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc} (a file-system error; check the path, its permissions and free space)"
    text = str(exc)
    if isinstance(exc, MemoryError) or "out of memory" in text.lower() or "can't allocate memory" in text:
        first = text.splitlines()[0] if text else type(exc).__name__
        return (
            f"out of memory ({first}); lower the model's sizes, train_batch_size or eval_batch_size, or use a "
            "machine with more memory"
        )
    return None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
