"""recforge: train and evaluate recommender models with RecBole's concepts, faster and exactly reproducible.

The pipeline, one way: ``Config`` -> ``create_dataset`` -> ``data_preparation`` -> model -> ``Trainer`` ->
``fit`` / ``evaluate``. ``run`` wires it in one call; ``load`` gives a trained model back, ready to
``recommend``; ``evaluate_predictions`` scores rankings made elsewhere; ``tune`` searches hyper-parameters with
Optuna on the validation split.

For models and trainers of your own: ``Recommender`` / ``GeneralRecommender``, ``register_model``,
``register_trainer``, and the config types (``Key`` with ``Int``, ``Float``, ``Bool``, ``Str``, ``Optional``,
``ListOf``, ``Mapping_``, ``Struct``, ``Anything``) to declare typed hyper-parameters.
"""

from recforge.config import Config
from recforge.config.types import Anything, Bool, Float, Int, Key, ListOf, Mapping_, Optional, Str, Struct
from recforge.data import Dataset, Interaction, create_dataset, data_preparation
from recforge.errors import CheckpointError, ConfigError, DataError, RecforgeError, TrainingError
from recforge.models import GeneralRecommender, Recommender, get_model, get_model_class, register_model
from recforge.quick_start import load_data_and_model, run, run_recbole
from recforge.registry import register_trainer
from recforge.serving import LoadedModel, load
from recforge.serving.predictions import evaluate_predictions
from recforge.trainer import AbstractTrainer, Callback, Objective, Trainer, get_trainer
from recforge.tuning import tune
from recforge.utils.enum_type import InputType, ModelType
from recforge.utils.log import init_logger
from recforge.utils.seed import init_seed

__version__ = "0.1.0"

__all__ = [
    "AbstractTrainer",
    "Anything",
    "Bool",
    "Callback",
    "CheckpointError",
    "Config",
    "ConfigError",
    "DataError",
    "Dataset",
    "Float",
    "GeneralRecommender",
    "InputType",
    "Int",
    "Interaction",
    "Key",
    "ListOf",
    "LoadedModel",
    "Mapping_",
    "ModelType",
    "Objective",
    "Optional",
    "RecforgeError",
    "Recommender",
    "Str",
    "Struct",
    "Trainer",
    "TrainingError",
    "__version__",
    "create_dataset",
    "data_preparation",
    "evaluate_predictions",
    "get_model",
    "get_model_class",
    "get_trainer",
    "init_logger",
    "init_seed",
    "load",
    "load_data_and_model",
    "register_model",
    "register_trainer",
    "run",
    "run_recbole",
    "tune",
]
