"""recforge: train and evaluate recommender models with RecBole's concepts, faster and exactly reproducible.

The pipeline, one way: ``Config`` -> ``create_dataset`` -> ``data_preparation`` -> model -> ``Trainer`` ->
``fit`` / ``evaluate``. ``run`` wires it in one call; ``load`` gives a trained model back, ready to
``recommend``; ``evaluate_predictions`` scores rankings made elsewhere; ``tune`` searches hyper-parameters with
Optuna on the validation split.

For models and trainers of your own: ``Recommender`` / ``GeneralRecommender``, ``register_model``,
``register_trainer``, and the config types (``Key`` with ``Int``, ``Float``, ``Bool``, ``Str``, ``Optional``,
``ListOf``, ``Mapping_``, ``Struct``, ``Anything``) to declare typed hyper-parameters.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Public names -> the module that defines them. They are imported on first use (PEP 562), so ``import recforge``
# (and ``recforge --help``) imports neither torch nor a model.
_EXPORTS = {
    "Config": "recforge.config",
    **dict.fromkeys(
        ("Anything", "Bool", "Float", "Int", "Key", "ListOf", "Mapping_", "Optional", "Str", "Struct"),
        "recforge.config.types",
    ),
    **dict.fromkeys(("Dataset", "Interaction", "create_dataset", "data_preparation"), "recforge.data"),
    **dict.fromkeys(
        ("CheckpointError", "ConfigError", "DataError", "RecforgeError", "TrainingError"), "recforge.errors"
    ),
    **dict.fromkeys(
        ("GeneralRecommender", "Recommender", "get_model", "get_model_class", "register_model"), "recforge.models"
    ),
    **dict.fromkeys(("load_data_and_model", "run", "run_recbole"), "recforge.quick_start"),
    "register_trainer": "recforge.registry",
    **dict.fromkeys(("LoadedModel", "load"), "recforge.serving"),
    "evaluate_predictions": "recforge.serving.predictions",
    **dict.fromkeys(("AbstractTrainer", "Callback", "Objective", "Trainer", "get_trainer"), "recforge.trainer"),
    "tune": "recforge.tuning",
    **dict.fromkeys(("InputType", "ModelType"), "recforge.utils.enum_type"),
    "init_logger": "recforge.utils.log",
    "init_seed": "recforge.utils.seed",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'recforge' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
