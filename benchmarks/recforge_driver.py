"""Run one recforge scenario and print one JSON line of measurements (used by compare.py; one process each).

    python benchmarks/recforge_driver.py --model BPR --dataset ml-100k --data-path ../shared/datasets \
        [--epochs 5] [--order RO] [--seed 2020] [--set key=value ...] [--skip-train]

Stages, timed separately: ``import`` (recforge and torch), ``load`` (create_dataset + data_preparation: read,
filter, remap, split, loaders), ``epoch`` (each ``_train_epoch``; the median is reported), ``eval`` (each
validation ``_valid_epoch``; median), ``test`` (the final test evaluation). ``peak_rss_mb`` is the process's
``ru_maxrss``. ``--skip-train`` evaluates the freshly initialised model only (for scoring benchmarks).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

STARTED = time.perf_counter()
sys.path.insert(0, str(Path(__file__).resolve().parent))
from driver_common import base_record, experiment, parse, peak_rss_mb, time_method  # noqa: E402


def main(argv=None) -> None:
    args = parse(__doc__.splitlines()[0], argv)
    import torch

    from recforge import Config, create_dataset, data_preparation, get_model_class, get_trainer, init_seed
    from recforge.config.types import parse_text

    imported = time.perf_counter() - STARTED
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {k: parse_text(v) for k, v in (item.split("=", 1) for item in args.set)}
    config = Config(
        args.model,
        args.dataset,
        config_dict={**experiment(args, overrides), "eval_batch_size": args.eval_users, "data_cache": False},
        cmd_args=[],  # the driver's own arguments are not config keys
    )
    init_seed(config["seed"], config["reproducibility"])
    started = time.perf_counter()
    dataset = create_dataset(config)
    train, valid, test = data_preparation(config, dataset)
    load = time.perf_counter() - started
    record = base_record("recforge", args, imported, load, dataset, torch.get_num_threads())
    if args.load_only:
        record["peak_rss_mb"] = peak_rss_mb()
        sys.stdout.write(json.dumps(record) + "\n")
        return
    init_seed(config["seed"], config["reproducibility"])
    model = get_model_class(config["model"])(config, train.dataset)

    if hasattr(model, "encoder"):  # trees: one build of the training + validation matrices, as for RecBole
        from recforge.data.features.matrix import FeatureEncoder

        started = time.perf_counter()
        encoder = FeatureEncoder(train.dataset, config)
        encoder.matrix(train.dataset.inter_feat)
        encoder.matrix(valid.dataset.inter_feat)
        record["features"] = time.perf_counter() - started
    epochs: list[float] = []
    evals: list[float] = []
    trainer = get_trainer(type(model))(config, model)  # NCL: NCLTrainer, as RecBole's get_trainer picks
    time_method(trainer, "_train_epoch", epochs)
    time_method(trainer, "_valid_epoch", evals)
    fit = 0.0
    if not args.skip_train:
        started = time.perf_counter()
        trainer.fit(train, valid, verbose=False, saved=False)
        fit = time.perf_counter() - started
    started = time.perf_counter()
    result = trainer.evaluate(test, load_best_model=not args.skip_train)
    test_seconds = time.perf_counter() - started
    record.update(
        fit=fit,
        test=test_seconds,
        epoch=statistics.median(epochs) if epochs else None,
        eval=statistics.median(evals) if evals else None,
        epochs_run=len(epochs),
        metrics=result,
        peak_rss_mb=peak_rss_mb(),
    )
    sys.stdout.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
