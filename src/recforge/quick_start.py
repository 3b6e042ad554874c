"""The pipeline in one call: config -> data -> model -> trainer -> results (RecBole's ``quick_start``).

``run`` does exactly what a script wired by hand does (``Config``, ``init_seed``, ``init_logger``,
``create_dataset``, ``data_preparation``, the model, ``get_trainer``, ``fit``, ``evaluate``); the run folder
is the trainer's (``recforge.trainer.run_folder``), so both write the same one.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from recforge.config import Config
from recforge.config.machine import machine_independent
from recforge.data import create_dataset, data_preparation
from recforge.errors import TrainingInterrupted
from recforge.models.building import create_model
from recforge.registry import get_trainer
from recforge.serving.rebuild import load_data_and_model  # noqa: F401 (RecBole's name here)
from recforge.trainer import distributed
from recforge.trainer.callbacks import Callback
from recforge.trainer.checkpoint import load_checkpoint
from recforge.trainer.serving_file import ServingWriter
from recforge.utils.log import LOGGER_NAME, init_logger
from recforge.utils.seed import init_seed

logger = logging.getLogger(LOGGER_NAME)


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
    evaluate_test: bool = True,
) -> dict[str, Any]:
    """Train and evaluate ``model`` on ``dataset`` (RecBole's ``run_recbole``).

    Returns ``{"model", "best_valid_score", "valid_score_bigger", "best_valid_result", "test_result", "run_dir"}``.
    The run folder holds config.yaml, run.log, history.jsonl, metrics.json, checkpoints/ and, once the run has
    finished, report.html (``recforge.report``; a failure to write it is a warning); it is created when
    training starts, so nothing is written when the config, data or model cannot be built (and nothing at all
    with ``saved=False``; ``run_dir`` is then None). ``resume`` continues from a checkpoint, whose config is the
    base layer (see ``Trainer.resume_checkpoint`` for where the run continues). ``cmd_args`` None reads the
    script's own ``--key=value`` arguments, as RecBole does. ``callbacks`` are passed to the trainer (after its
    built-in ones; see ``recforge.trainer.callbacks``). With ``evaluate_test=False`` the test split is never evaluated
    and ``test_result`` is None (a tuning trial: only validation may choose).
    """
    init_logger("INFO" if verbose else "WARNING")
    base_config = machine_independent(load_checkpoint(resume, mmap=True)["config"]) if resume is not None else None
    config = Config(model, dataset, config_file_list, config_dict, cmd_args, base_config=base_config)
    logging.getLogger().setLevel(config["state"] if verbose else "WARNING")
    distributed.setup(torch.device(config["device"]))  # a rank of several: join the group; only rank 0 logs
    trainer, train_data, valid_data, test_data = _prepare(config, callbacks)
    show_progress = config["show_progress"]
    try:
        if resume is not None:
            trainer.resume_checkpoint(resume)
        best_score, best_result = trainer.fit(train_data, valid_data, verbose, saved, show_progress)
        test_data = test_data if evaluate_test else None  # evaluate(None) is None: the test split is never scored
        test_result = trainer.evaluate(test_data, load_best_model=True, show_progress=show_progress)
    except TrainingInterrupted:
        raise
    except Exception as exc:
        if distributed.is_main_process() and not distributed.peer_failed(exc):
            logger.error("run failed: %s: %s", type(exc).__name__, exc)
        raise
    if test_result is not None:
        places = config["metric_decimal_place"]
        logger.info("test result: %s", "  ".join(f"{k}: {v:.{places}f}" for k, v in test_result.items()))
    return {
        "model": config["model"],
        "best_valid_score": best_score,
        "valid_score_bigger": config["valid_metric_bigger"],
        "best_valid_result": best_result,
        "test_result": test_result,
        "run_dir": str(trainer.run_dir) if trainer.run_dir is not None and saved else None,
    }


def _prepare(config: Config, callbacks: Iterable[Callback]) -> tuple[Any, Any, Any, Any]:
    """The data (seeded as RecBole seeds it), the model and its trainer of a run: ``(trainer, train, valid, test)``."""
    init_seed(config["seed"], config["reproducibility"])
    data = create_dataset(config)
    logger.info("%s", data)
    train_data, valid_data, test_data = data_preparation(config, data)
    init_seed(config["seed"], config["reproducibility"])
    net = create_model(config.model_class, config, train_data.dataset)
    logger.info("config:\n%s", config)
    logger.info("%s", net)
    trainer = build_trainer(get_trainer(config.model_class), config, net, list(callbacks))
    for writer in (c for c in getattr(trainer, "callbacks", ()) if isinstance(c, ServingWriter)):
        writer.include_test(test_data)  # serving.npz holds the test items also when the test split is not scored
    return trainer, train_data, valid_data, test_data


def build_trainer(trainer_class: type, config: Config, model: torch.nn.Module, callbacks: list[Callback]) -> Any:
    """``trainer_class(config, model)`` with ``callbacks``: passed to a constructor that takes them, else added
    after construction (RecBole's trainers, and the ones its documentation teaches, take ``(config, model)``)."""
    parameters = inspect.signature(trainer_class).parameters.values()
    takes_callbacks = any(p.name == "callbacks" or p.kind is p.VAR_KEYWORD for p in parameters)
    trainer = trainer_class(config, model, callbacks=callbacks) if takes_callbacks else trainer_class(config, model)
    attached = getattr(trainer, "callbacks", [])
    missing = [c for c in callbacks if not any(c is a for a in attached)]  # also a **kwargs that dropped them
    if missing and not hasattr(trainer, "add_callback"):
        logger.warning(
            "%s is not a recforge Trainer: its run folder gets no %s",
            trainer_class.__name__,
            ", ".join(type(c).__name__ for c in missing),
        )
    for callback in missing if hasattr(trainer, "add_callback") else ():
        trainer.add_callback(callback)
    return trainer


def objective_function(
    config_dict: Mapping[str, Any] | None = None,
    config_file_list: Iterable[str | Path] | None = None,
    saved: bool = True,
) -> dict[str, Any]:
    """RecBole's hyper-parameter objective: one quiet run of the model the config names, returning ``{"model",
    "best_valid_score", "valid_score_bigger", "best_valid_result", "test_result"}``. Command-line arguments are not
    read (the objective is called by a tuner). recforge's own tuner is ``recforge.tuning.tune``."""
    result = run(config_file_list=config_file_list, config_dict=config_dict, saved=saved, cmd_args={}, verbose=False)
    return {"model": result["model"], **{k: v for k, v in result.items() if k not in ("model", "run_dir")}}


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
