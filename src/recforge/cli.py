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

import argparse
import sys
from collections.abc import Mapping, Sequence

from recforge.errors import ConfigError, RecforgeError, TrainingInterrupted


def _format_table(columns: Mapping[str, Mapping[str, float] | None], places: int) -> str:
    """Metrics as an aligned text table: one row per metric, one column per split."""
    present = {name: values for name, values in columns.items() if values}
    if not present:
        return "(no metrics: the data set has no validation or test interactions)"
    metrics = list(dict.fromkeys(k for values in present.values() for k in values))
    width = max(len("metric"), *(len(m) for m in metrics))
    header = "metric".ljust(width) + "".join(f"  {name:>10}" for name in present)
    lines = [header, "-" * len(header)]
    for metric in metrics:
        cells = "".join(
            f"  {values[metric]:>10.{places}f}" if metric in values else f"  {'':>10}" for values in present.values()
        )
        lines.append(metric.ljust(width) + cells)
    return "\n".join(lines)


def _cmd_run(args: argparse.Namespace, extra: list[str]) -> int:
    from recforge.quick_start import run
    from recforge.trainer import distributed

    config_files = [f for spec in args.config_files or [] for f in spec.split()]
    if args.no_cache:
        extra = [*extra, "--data_cache", "false"]
    if not distributed.started_as_rank():
        from recforge.config import Config
        from recforge.config.machine import machine_independent
        from recforge.trainer.checkpoint import load_checkpoint

        base = machine_independent(load_checkpoint(args.resume, mmap=True)["config"]) if args.resume else None
        config = Config(args.model, args.dataset, config_files or None, cmd_args=extra, base_config=base)
        total = config["world_size"] if (config["world_size"] or -1) > 0 else None
        if config["nproc"] > 1 or (total or 1) > 1:
            from recforge.trainer.launch import launch

            where = (config["ip"], config["port"], config["offset"], args.debug)
            return launch(_rank_main, args.argv, config["nproc"], total, *where)
    result = run(
        model=args.model,
        dataset=args.dataset,
        config_file_list=config_files or None,
        cmd_args=extra,
        resume=args.resume,
        verbose=not args.quiet,
    )
    from pathlib import Path

    import yaml

    main_process = distributed.is_main_process()
    distributed.leave()
    if not main_process:
        return 0  # rank 0 prints the results
    places = yaml.safe_load((Path(result["run_dir"]) / "config.yaml").read_text())["metric_decimal_place"]
    print(f"\n{result['run_dir']}")
    print(_format_table({"valid": result["best_valid_result"], "test": result["test_result"]}, places))
    return 0


def _cmd_evaluate(args: argparse.Namespace, extra: list[str]) -> int:
    from recforge.config import parse_command_line
    from recforge.utils.log import init_logger

    init_logger("WARNING" if args.quiet else "INFO")
    overrides = parse_command_line(extra)
    if args.predictions is not None:
        return _evaluate_predictions(args, overrides)
    if args.config_files:
        raise ConfigError("--config_files goes with --predictions; with --checkpoint, override keys as --key value")
    return _evaluate_checkpoint(args, overrides)


def _evaluate_checkpoint(args: argparse.Namespace, overrides: dict) -> int:
    """``recforge evaluate --checkpoint``: the checkpoint's model on its data set's valid / test splits, in one
    process or, with ``--nproc N`` (or under torchrun), sharded over N processes as ``run`` evaluates."""
    from recforge.config import Config
    from recforge.config.machine import machine_independent, processes
    from recforge.quick_start import load_data_and_model
    from recforge.trainer import distributed, get_trainer
    from recforge.trainer.checkpoint import load_checkpoint

    state = load_checkpoint(args.checkpoint, mmap=True)
    saved = state.get("config", {})
    for key, wanted in (("model", args.model), ("dataset", args.dataset)):
        if wanted is not None and str(wanted).lower() != str(saved.get(key)).lower():
            raise ConfigError(
                f"--{key} {wanted}: checkpoint {args.checkpoint} holds {saved.get('model')} trained on "
                f"{saved.get('dataset')}; drop --{key} (it is read from the checkpoint) or pick a checkpoint of "
                f"{wanted}"
            )
    if not distributed.started_as_rank():
        config = Config(config_dict=overrides, cmd_args=[], base_config=machine_independent(saved))
        if processes(config) > 1:
            from recforge.trainer.launch import launch

            total = config["world_size"] if (config["world_size"] or -1) > 0 else None
            where = (config["ip"], config["port"], config["offset"], args.debug)
            return launch(_rank_main, args.argv, config["nproc"], total, *where)
    config, model, _, _, valid_data, test_data = load_data_and_model(args.checkpoint, overrides)
    trainer = get_trainer(config.model_class)(config, model)  # joins the process group of a launched rank
    trainer.verbose = False
    split = args.split or "both"
    columns = {}
    if split in ("valid", "both"):
        columns["valid"] = trainer.evaluate(valid_data, load_best_model=False)
    if split in ("test", "both"):
        columns["test"] = trainer.evaluate(test_data, load_best_model=False)
    main_process = distributed.is_main_process()
    distributed.leave()
    if main_process:  # rank 0 prints the results
        print(f"{config['model']} on {config['dataset']}, epoch {state.get('epoch')} ({args.checkpoint})")
        print(_format_table(columns, config["metric_decimal_place"]))
    return 0


def _evaluate_predictions(args: argparse.Namespace, overrides: dict) -> int:
    from recforge.config import Config
    from recforge.serving.predictions import evaluate_predictions

    if not args.dataset:
        raise ConfigError("recforge evaluate --predictions needs --dataset (the data set the rankings are for)")
    if int(overrides.get("nproc", 1)) > 1 or int(overrides.get("world_size", 1) or 1) > 1:
        raise ConfigError("--predictions: rankings made elsewhere are scored in one process; drop --nproc")
    config = Config(args.model or "Pop", args.dataset, args.config_files, overrides, cmd_args=[])
    splits = ("valid", "test") if args.split == "both" else (args.split or "test",)
    columns = {split: evaluate_predictions(args.predictions, config, split) for split in splits}
    print(f"{args.predictions} on {config['dataset']}")
    print(_format_table(columns, config["metric_decimal_place"]))
    return 0


def _cmd_recommend(args: argparse.Namespace, extra: list[str]) -> int:
    from recforge.serving.commands import recommend_command
    from recforge.utils.log import init_logger

    init_logger("WARNING" if args.quiet else "INFO")
    return recommend_command(args)


def _cmd_tune(args: argparse.Namespace, extra: list[str]) -> int:
    from recforge.tuning.command import tune_command

    return tune_command(args, extra)


def _cmd_models(args: argparse.Namespace, extra: list[str]) -> int:
    from recforge.registry import get_model_class, model_names

    for name in model_names():
        cls = get_model_class(name)
        keys = ", ".join(f"{k.name}={k.default!r}" for k in cls.hyper_parameters or ()) or "-"
        kind = cls.type.name.lower()
        print(f"{name:<12} {kind:<12} {cls.input_type.name.lower():<10} trainer={cls.trainer:<10} {keys}")
    return 0


def _cmd_datasets(args: argparse.Namespace, extra: list[str]) -> int:
    from recforge.data.registry import find_datasets
    from recforge.registry.datasets import KNOWN, bundled_datasets

    for name in bundled_datasets():
        print(f"{name:<20} bundled")
    for name in find_datasets(args.data_path):
        print(f"{name:<20} in {args.data_path}")
    for name, info in KNOWN.items():
        if name not in find_datasets(args.data_path):
            print(f"{name:<20} not here: {info['source']} ({info['license']})")
    return 0


def _cmd_convert(args: argparse.Namespace, extra: list[str]) -> int:
    from recforge.data.convert import convert_movielens

    out = convert_movielens(args.source, args.out, name=args.name, overwrite=args.overwrite)
    print(f"wrote {out}")
    return 0


def _cmd_report(args: argparse.Namespace, extra: list[str]) -> int:
    from recforge.report import write_report
    from recforge.utils.log import init_logger

    init_logger("WARNING")
    print(f"wrote {write_report(args.run_dirs, args.output)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recforge", description="Train and evaluate recommender models.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", required=True)
    plugins = argparse.ArgumentParser(add_help=False)
    plugins.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import a module (or a .py file) that registers models / trainers of your own; repeatable",
    )

    run = sub.add_parser(
        "run", parents=[plugins], help="train and evaluate a model; any config key can follow as --key value"
    )
    run.add_argument("--model", help="model name, e.g. BPR")
    run.add_argument("--dataset", help="data set name, e.g. ml-latest-small")
    run.add_argument("--config_files", "--config-files", nargs="+", help="YAML config files, applied in order")
    run.add_argument(
        "--resume", help="continue a run from this checkpoint (its config is the base; any key may follow)"
    )
    run.add_argument("--quiet", action="store_true", help="log warnings only")
    run.add_argument("--no-cache", action="store_true", help="process the data set afresh (data_cache: false)")
    run.set_defaults(handler=_cmd_run)

    evaluate = sub.add_parser(
        "evaluate", parents=[plugins], help="evaluate a saved checkpoint, or a file of rankings, on its data set"
    )
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="a .pth file written by recforge")
    source.add_argument("--predictions", help="a ranking file (user, item, rank or score) made elsewhere")
    evaluate.add_argument("--model", help=argparse.SUPPRESS)
    evaluate.add_argument("--dataset", help="with --predictions: the data set, e.g. ml-100k")
    evaluate.add_argument("--config_files", "--config-files", nargs="+", help="with --predictions: YAML configs")
    evaluate.add_argument("--split", choices=("test", "valid", "both"), default=None)
    evaluate.add_argument("--quiet", action="store_true")
    evaluate.set_defaults(handler=_cmd_evaluate)

    from recforge.serving.commands import add_recommend_parser

    add_recommend_parser(sub, [plugins]).set_defaults(handler=_cmd_recommend)

    from recforge.tuning.command import add_tune_parser

    add_tune_parser(sub, [plugins]).set_defaults(handler=_cmd_tune)

    models = sub.add_parser("models", parents=[plugins], help="list the models")
    models.set_defaults(handler=_cmd_models)

    datasets = sub.add_parser("datasets", help="list the data sets")
    datasets.add_argument("--data_path", "--data-path", default="dataset/")
    datasets.set_defaults(handler=_cmd_datasets)

    convert = sub.add_parser("convert-movielens", help="convert MovieLens CSV files to atomic files")
    convert.add_argument("source", help="folder with ratings.csv, movies.csv, tags.csv, links.csv")
    convert.add_argument("out", help="folder to write")
    convert.add_argument("--name", default="ml-latest-small", help="data set name (file stem)")
    convert.add_argument("--overwrite", action="store_true")
    convert.set_defaults(handler=_cmd_convert)

    report = sub.add_parser("report", help="write an HTML report of a run, or a comparison of several runs")
    report.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="a run folder, or a folder of run folders")
    report.add_argument("-o", "--output", help="the HTML file (default: RUN_DIR/report.html; needed for several)")
    report.set_defaults(handler=_cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
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


def _rank_main(argv: list[str]) -> None:
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
