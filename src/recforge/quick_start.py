"""The one place where the pipeline is wired: config -> data -> model -> trainer -> results."""

from __future__ import annotations

import json
import logging
import logging.handlers
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from recforge.config import Config
from recforge.data import create_dataset, data_preparation
from recforge.errors import TrainingInterrupted
from recforge.models import get_model_class
from recforge.trainer import get_trainer
from recforge.trainer.checkpoint import load_checkpoint
from recforge.utils.files import atomic_write
from recforge.utils.log import LOGGER_NAME, init_logger
from recforge.utils.run_dir import create_run_dir
from recforge.utils.seed import init_seed

logger = logging.getLogger(LOGGER_NAME)

# Saved config keys that describe the machine rather than the run; not carried into a reloaded run.
_MACHINE_KEYS = ("device", "use_gpu", "gpu_id")


def write_json(path: str | Path, data: Any) -> None:
    """Write JSON atomically."""
    with atomic_write(path, "w") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")


def run(
    model: str | None = None,
    dataset: str | None = None,
    config_file_list: Iterable[str | Path] | None = None,
    config_dict: Mapping[str, Any] | None = None,
    saved: bool = True,
    resume: str | Path | None = None,
    cmd_args: Mapping[str, str] | Iterable[str] | None = None,
    verbose: bool = True,
) -> dict[str, Any]:
    """Train and evaluate ``model`` on ``dataset`` (RecBole's ``run_recbole``).

    Returns ``{"best_valid_score", "valid_score_bigger", "best_valid_result", "test_result", "run_dir"}``.
    The run folder holds config.yaml, run.log, metrics.json and checkpoints/best.pth. ``resume`` continues
    from a checkpoint (its config is the base layer; the run continues in the checkpoint's run folder).
    Nothing is written until the config, data and model have been built without error.
    """
    init_logger(level="INFO" if verbose else "WARNING", console=True)
    buffer = logging.handlers.MemoryHandler(capacity=1 << 20, flushLevel=logging.CRITICAL + 1)
    logger.addHandler(buffer)
    base_config, resume_dir = None, None
    if resume is not None:
        base_config = machine_independent(load_checkpoint(resume)["config"])
        resume_dir = run_dir_of(resume)
    try:
        config = Config(model, dataset, config_file_list, config_dict, cmd_args, base_config=base_config)
        logger.setLevel(config["state"] if verbose else "WARNING")
        init_seed(config["seed"], config["reproducibility"])
        data = create_dataset(config)
        logger.info("%s", data)
        train_data, valid_data, test_data = data_preparation(config, data)
        init_seed(config["seed"], config["reproducibility"])
        net = get_model_class(config["model"])(config, train_data.dataset)
        logger.info("%s", net)
        run_dir = resume_dir or create_run_dir(config)
        init_logger(level=config["state"] if verbose else "WARNING", log_file=run_dir / "run.log", console=True)
        file_handler = next(h for h in logger.handlers if isinstance(h, logging.FileHandler))
        buffer.setTarget(file_handler)
        buffer.flush()
    finally:
        logger.removeHandler(buffer)
        buffer.close()
    config.save(run_dir / "config.yaml")
    logger.info("run folder: %s%s", run_dir, f" (resuming {resume})" if resume is not None else "")
    logger.info("config:\n%s", config)

    trainer = get_trainer(config.model_class)(config, net, run_dir=run_dir)
    try:
        if resume is not None:
            trainer.resume_checkpoint(resume)
        best_score, best_result = trainer.fit(
            train_data, valid_data, verbose=verbose, saved=saved, show_progress=config["show_progress"]
        )
        test_result = trainer.evaluate(test_data, load_best_model=True, show_progress=config["show_progress"])
    except TrainingInterrupted as exc:
        logger.warning("%s", exc)
        if exc.checkpoint is not None:
            logger.warning("resume with: recforge run --resume %s", exc.checkpoint)
        raise
    except Exception as exc:
        logger.error("run failed: %s: %s", type(exc).__name__, exc)
        raise
    result = {
        "best_valid_score": best_score,
        "valid_score_bigger": config["valid_metric_bigger"],
        "best_valid_result": best_result,
        "test_result": test_result,
        "run_dir": str(run_dir),
    }
    write_json(
        run_dir / "metrics.json",
        {
            "model": config["model"],
            "dataset": config["dataset"],
            **result,
            "epochs_run": trainer.start_epoch,
            "best_epoch": trainer.best_epoch,
            "train_loss": {str(k): v for k, v in trainer.train_loss_dict.items()},
        },
    )
    if test_result is not None:
        logger.info(
            "test result: %s", "  ".join(f"{k}: {v:.{config['metric_decimal_place']}f}" for k, v in test_result.items())
        )
    return result


def machine_independent(saved_config: Mapping[str, Any]) -> dict[str, Any]:
    """A saved config without the keys that describe the machine it ran on (device, use_gpu, gpu_id)."""
    return {k: v for k, v in saved_config.items() if k not in _MACHINE_KEYS}


def run_dir_of(checkpoint: str | Path) -> Path | None:
    """The run folder of ``<run_dir>/checkpoints/<kind>.pth``, or None for a checkpoint stored elsewhere."""
    path = Path(checkpoint).resolve()
    if path.parent.name == "checkpoints" and (path.parent.parent / "config.yaml").is_file():
        return path.parent.parent
    return None


def load_data_and_model(model_file: str | Path, config_dict: Mapping[str, Any] | None = None):
    """Rebuild everything a checkpoint was trained with (RecBole's ``load_data_and_model``).

    ``config_dict`` overrides saved keys (e.g. ``data_path`` on another machine). Returns
    ``(config, model, dataset, train_data, valid_data, test_data)`` with the checkpoint's weights loaded.
    """
    from recforge.trainer.checkpoint import load_model_state

    state = load_checkpoint(model_file)
    config = Config(config_dict=config_dict, base_config=machine_independent(state["config"]))
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"], config["reproducibility"])
    model = get_model_class(config["model"])(config, train_data.dataset)
    load_model_state(model, state, model_file)
    model.to(config["device"])
    return config, model, dataset, train_data, valid_data, test_data
