"""The handlers of the ``recforge`` subcommands: ``handler(args, extra) -> exit status``. Each imports what it needs
when it runs (the parser imports this module, and ``recforge --help`` must not import torch)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from recforge.errors import ConfigError


def format_table(columns: Mapping[str, Mapping[str, float] | None], places: int) -> str:
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


def run(args: argparse.Namespace, extra: list[str]) -> int:
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
            from recforge.cli import rank_main

            return launch(rank_main, args.argv, config["nproc"], total, *where)
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
    print(format_table({"valid": result["best_valid_result"], "test": result["test_result"]}, places))
    return 0


def evaluate(args: argparse.Namespace, extra: list[str]) -> int:
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
            from recforge.cli import rank_main

            return launch(rank_main, args.argv, config["nproc"], total, *where)
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
        print(format_table(columns, config["metric_decimal_place"]))
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
    print(format_table(columns, config["metric_decimal_place"]))
    return 0


def recommend(args: argparse.Namespace, extra: list[str]) -> int:
    from recforge.serving.commands import recommend_command
    from recforge.utils.log import init_logger

    init_logger("WARNING" if args.quiet else "INFO")
    return recommend_command(args)


def tune(args: argparse.Namespace, extra: list[str]) -> int:
    from recforge.tuning.command import tune_command

    return tune_command(args, extra)


def models(args: argparse.Namespace, extra: list[str]) -> int:
    """Every model with its type, input, trainer and keys: the built-in ones from their declarations (nothing
    imported), a user's from its class."""
    from recforge.config.model_keys import model_declaration
    from recforge.registry import get_model_class, model_names

    for name in model_names():
        declared = model_declaration(name)
        if declared is None:
            cls = get_model_class(name)
            declared = {
                "type": cls.type.name.lower(),
                "input_type": cls.input_type.name.lower(),
                "trainer": cls.trainer,
                "keys": cls.hyper_parameters,
            }
        keys = ", ".join(f"{k.name}={k.default!r}" for k in declared["keys"] or ()) or "-"
        print(
            f"{name:<12} {declared['type']:<12} {declared['input_type']:<10} trainer={declared['trainer']:<10} {keys}"
        )
    return 0


def datasets(args: argparse.Namespace, extra: list[str]) -> int:
    from recforge.data.files.location import find_datasets
    from recforge.registry.datasets import KNOWN, bundled_datasets

    for name in bundled_datasets():
        print(f"{name:<20} bundled")
    for name in find_datasets(args.data_path):
        print(f"{name:<20} in {args.data_path}")
    for name, info in KNOWN.items():
        if name not in find_datasets(args.data_path):
            print(f"{name:<20} not here: {info['source']} ({info['license']})")
    return 0


def convert(args: argparse.Namespace, extra: list[str]) -> int:
    from recforge.data.files.convert import convert_movielens

    out = convert_movielens(args.source, args.out, name=args.name, overwrite=args.overwrite)
    print(f"wrote {out}")
    return 0


def kg_embeddings(args: argparse.Namespace, extra: list[str]) -> int:
    from recforge.data.files.location import resolve_dataset_dir
    from recforge.models.knowledge.kg_embeddings import write_kg_embeddings
    from recforge.utils.log import init_logger

    init_logger("INFO")
    source = resolve_dataset_dir(args.dataset, args.data_path)
    out = write_kg_embeddings(
        source, args.dataset, args.out, args.embedding_size, args.epochs, args.seed, overwrite=args.overwrite
    )
    print(f"wrote {out / args.dataset}.ent and .rel" + (f"; read it with --data_path {out.parent}" if args.out else ""))
    return 0


def report(args: argparse.Namespace, extra: list[str]) -> int:
    from recforge.report import write_report
    from recforge.utils.log import init_logger

    init_logger("WARNING")
    print(f"wrote {write_report(args.run_dirs, args.output)}")
    return 0
