"""The pipeline in one call: config -> data -> model -> trainer -> results (RecBole's ``quick_start``).

``run`` does exactly what a script wired by hand does (``Config``, ``init_seed``, ``init_logger``,
``create_dataset``, ``data_preparation``, the model, ``get_trainer``, ``fit``, ``evaluate``); the run folder
is the trainer's (``recforge.trainer.run_folder``), so both write the same one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from recforge.config import Config
from recforge.data import create_dataset, data_preparation
from recforge.errors import TrainingInterrupted
from recforge.models.sizing import create_model
from recforge.registry import get_model_class, get_trainer
from recforge.trainer import distributed
from recforge.trainer.checkpoint import load_checkpoint, load_model_state
from recforge.trainer.events import Callback
from recforge.utils.log import LOGGER_NAME, init_logger
from recforge.utils.seed import init_seed

logger = logging.getLogger(LOGGER_NAME)

# Saved config keys that describe the machine rather than the run; not carried into a reloaded run.
_MACHINE_KEYS = ("device", "use_gpu", "gpu_id")


def run(
    model: str | type | None = None,
    dataset: str | None = None,
    config_file_list: Iterable[str | Path] | None = None,
    config_dict: Mapping[str, Any] | None = None,
    saved: bool = True,
    resume: str | Path | None = None,
    cmd_args: Mapping[str, str] | Iterable[str] | None = None,
    verbose: bool = True,
    callbacks: Iterable[Callback] = (),
) -> dict[str, Any]:
    """Train and evaluate ``model`` on ``dataset`` (RecBole's ``run_recbole``).

    Returns ``{"best_valid_score", "valid_score_bigger", "best_valid_result", "test_result", "run_dir"}``.
    The run folder holds config.yaml, run.log, history.jsonl, metrics.json, checkpoints/ and, once the run has
    finished, report.html (``recforge.report``; a failure to write it is a warning); it is created when
    training starts, so nothing is written when the config, data or model cannot be built (and nothing at all
    with ``saved=False``; ``run_dir`` is then None). ``resume`` continues from a checkpoint, whose config is the
    base layer (see ``Trainer.resume_checkpoint`` for where the run continues). ``cmd_args`` None reads the
    script's own ``--key=value`` arguments, as RecBole does. ``callbacks`` are passed to the trainer (after its
    built-in ones; see ``recforge.trainer.events``).
    """
    init_logger("INFO" if verbose else "WARNING")
    base_config = machine_independent(load_checkpoint(resume, mmap=True)["config"]) if resume is not None else None
    config = Config(model, dataset, config_file_list, config_dict, cmd_args, base_config=base_config)
    logging.getLogger().setLevel(config["state"] if verbose else "WARNING")
    distributed.setup(torch.device(config["device"]))  # a rank of several: join the group; only rank 0 logs
    init_seed(config["seed"], config["reproducibility"])
    data = create_dataset(config)
    logger.info("%s", data)
    train_data, valid_data, test_data = data_preparation(config, data)
    init_seed(config["seed"], config["reproducibility"])
    net = create_model(config.model_class, config, train_data.dataset)
    logger.info("config:\n%s", config)
    logger.info("%s", net)
    trainer = get_trainer(config.model_class)(config, net, callbacks=callbacks)
    try:
        if resume is not None:
            trainer.resume_checkpoint(resume)
        best_score, best_result = trainer.fit(
            train_data, valid_data, verbose=verbose, saved=saved, show_progress=config["show_progress"]
        )
        test_result = trainer.evaluate(test_data, load_best_model=True, show_progress=config["show_progress"])
    except TrainingInterrupted:
        raise
    except Exception as exc:
        if distributed.is_main_process() and not distributed.peer_failed(exc):
            logger.error("run failed: %s: %s", type(exc).__name__, exc)
        raise
    if test_result is not None:
        places = config["metric_decimal_place"]
        logger.info("test result: %s", "  ".join(f"{k}: {v:.{places}f}" for k, v in test_result.items()))
    if saved and trainer.run_dir is not None and trainer.run_dir.is_dir() and distributed.is_main_process():
        _write_report(trainer.run_dir)
    return {
        "best_valid_score": best_score,
        "valid_score_bigger": config["valid_metric_bigger"],
        "best_valid_result": best_result,
        "test_result": test_result,
        "run_dir": str(trainer.run_dir) if trainer.run_dir is not None and saved else None,
    }


def _write_report(run_dir: Path) -> None:
    """``<run_dir>/report.html``; a failure is a warning, never the run's failure."""
    try:
        from recforge.report import write_report

        write_report(run_dir)
    except Exception as exc:
        logger.warning("the run report %s/report.html was not written: %s: %s", run_dir, type(exc).__name__, exc)


def run_recbole(
    model: str | type | None = None,
    dataset: str | None = None,
    config_file_list: Iterable[str | Path] | None = None,
    config_dict: Mapping[str, Any] | None = None,
    saved: bool = True,
    **options: Any,
) -> dict[str, Any]:
    """RecBole's name and signature for ``run``; its distributed arguments (queue, nproc, world_size, ip, port,
    group_offset) are accepted. Called in a process a launcher started as one rank (torchrun), it trains as that
    rank; otherwise one process trains: start several with ``recforge run --nproc N`` or torchrun."""
    if int(options.get("nproc", 1) or 1) > 1 and not distributed.started_as_rank():
        logger.warning(
            "run_recbole: nproc=%s: this call trains in one process; start several with recforge run --nproc %s "
            "or torchrun --nproc_per_node %s",
            options["nproc"],
            options["nproc"],
            options["nproc"],
        )
    return run(model, dataset, config_file_list, config_dict, saved=saved)


def machine_independent(saved_config: Mapping[str, Any]) -> dict[str, Any]:
    """A saved config without the keys that describe the machine it ran on (device, use_gpu, gpu_id)."""
    return {k: v for k, v in saved_config.items() if k not in _MACHINE_KEYS}


def load_data_and_model(model_file: str | Path, config_dict: Mapping[str, Any] | None = None):
    """Rebuild everything a checkpoint was trained with (RecBole's ``load_data_and_model``).

    ``config_dict`` overrides saved keys (e.g. ``data_path`` on another machine). Returns
    ``(config, model, dataset, train_data, valid_data, test_data)`` with the checkpoint's weights loaded.
    """
    state = load_checkpoint(model_file)
    config = Config(config_dict=config_dict, cmd_args=[], base_config=machine_independent(state["config"]))
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"], config["reproducibility"])
    model = create_model(get_model_class(config["model"]), config, train_data.dataset)
    load_model_state(model, state, model_file)
    model.to(config["device"])
    return config, model, dataset, train_data, valid_data, test_data
