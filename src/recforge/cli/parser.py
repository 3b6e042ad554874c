"""The ``recforge`` command line: every subcommand's arguments. It imports only ``argparse`` and the handlers'
module (whose handlers import what they need when they run), so ``recforge --help`` starts in a blink."""

from __future__ import annotations

import argparse

from recforge.cli import commands

SPLITS = ("train", "valid", "test")


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
    _run_parser(sub, [plugins]).set_defaults(handler=commands.run)
    _evaluate_parser(sub, [plugins]).set_defaults(handler=commands.evaluate)
    add_recommend_parser(sub, [plugins]).set_defaults(handler=commands.recommend)
    add_tune_parser(sub, [plugins]).set_defaults(handler=commands.tune)
    sub.add_parser("models", parents=[plugins], help="list the models").set_defaults(handler=commands.models)
    _other_parsers(sub)
    return parser


def _run_parser(sub, parents: list[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    run = sub.add_parser(
        "run", parents=parents, help="train and evaluate a model; any config key can follow as --key value"
    )
    run.add_argument("--model", help="model name, e.g. BPR")
    run.add_argument("--dataset", help="data set name, e.g. ml-latest-small")
    run.add_argument("--config_files", "--config-files", nargs="+", help="YAML config files, applied in order")
    run.add_argument(
        "--resume", help="continue a run from this checkpoint (its config is the base; any key may follow)"
    )
    run.add_argument("--quiet", action="store_true", help="log warnings only")
    run.add_argument("--no-cache", action="store_true", help="process the data set afresh (data_cache: false)")
    return run


def _evaluate_parser(sub, parents: list[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    evaluate = sub.add_parser(
        "evaluate", parents=parents, help="evaluate a saved checkpoint, or a file of rankings, on its data set"
    )
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="a .pth file written by recforge")
    source.add_argument("--predictions", help="a ranking file (user, item, rank or score) made elsewhere")
    evaluate.add_argument("--model", help=argparse.SUPPRESS)
    evaluate.add_argument("--dataset", help="with --predictions: the data set, e.g. ml-100k")
    evaluate.add_argument("--config_files", "--config-files", nargs="+", help="with --predictions: YAML configs")
    evaluate.add_argument("--split", choices=("test", "valid", "both"), default=None)
    evaluate.add_argument("--quiet", action="store_true")
    return evaluate


def _other_parsers(sub) -> None:
    datasets = sub.add_parser("datasets", help="list the data sets")
    datasets.add_argument("--data_path", "--data-path", default="dataset/")
    datasets.set_defaults(handler=commands.datasets)
    convert = sub.add_parser("convert-movielens", help="convert MovieLens CSV files to atomic files")
    convert.add_argument("source", help="folder with ratings.csv, movies.csv, tags.csv, links.csv")
    convert.add_argument("out", help="folder to write")
    convert.add_argument("--name", default="ml-latest-small", help="data set name (file stem)")
    convert.add_argument("--overwrite", action="store_true")
    convert.set_defaults(handler=commands.convert)
    embed = sub.add_parser(
        "kg-embeddings",
        help="train TransE on a data set's .kg file and write the .ent / .rel files KSR and GRU4RecKG read",
    )
    embed.add_argument("--dataset", "-d", required=True)
    embed.add_argument("--data_path", "--data-path", default="dataset/")
    embed.add_argument(
        "--out",
        help="folder to write <dataset>/ into, with links to the data set's files (default: the data set's own folder)",
    )
    embed.add_argument("--embedding-size", type=int, default=64, help="values per vector (KSR: kg_embedding_size)")
    embed.add_argument("--epochs", type=int, default=20)
    embed.add_argument("--seed", type=int, default=2020)
    embed.add_argument("--overwrite", action="store_true")
    embed.set_defaults(handler=commands.kg_embeddings)
    report = sub.add_parser("report", help="write an HTML report of a run, or a comparison of several runs")
    report.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="a run folder, or a folder of run folders")
    report.add_argument("-o", "--output", help="the HTML file (default: RUN_DIR/report.html; needed for several)")
    report.set_defaults(handler=commands.report)


def add_recommend_parser(sub, parents: list[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    recommend = sub.add_parser("recommend", parents=parents, help="recommend items to users with a trained model")
    recommend.add_argument("--checkpoint", required=True, help="a .pth file written by recforge run")
    who = recommend.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", action="append", help="a user token; repeatable")
    who.add_argument("--users-file", "--users_file", help="a text file with one user token per line")
    recommend.add_argument("--k", type=int, default=10, help="items per user (default 10)")
    recommend.add_argument("--include-seen", action="store_true", help="also recommend items the user already had")
    recommend.add_argument(
        "--exclude",
        nargs="+",
        choices=(*SPLITS, "none"),
        default=list(SPLITS),
        metavar="SPLIT",
        help="leave out the user's items of these splits: train, valid, test, or none (default: all three)",
    )
    recommend.add_argument(
        "--fallback",
        choices=("popular",),
        help="unknown users get the most popular items instead of an error (marked 'popular' in a source column)",
    )
    recommend.add_argument("--format", choices=("table", "csv", "json"), default="table")
    recommend.add_argument("--output", "-o", help="write to this file instead of the screen")
    recommend.add_argument("--quiet", action="store_true")
    return recommend


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
