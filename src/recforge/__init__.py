"""recforge: train and evaluate recommender models with RecBole's concepts, faster and exactly reproducible.

The pipeline, one way: ``Config`` -> ``create_dataset`` -> ``data_preparation`` -> model -> ``Trainer`` ->
``fit`` / ``evaluate``. ``run`` wires it in one call.
"""

from recforge.config import Config
from recforge.data import Dataset, Interaction, create_dataset, data_preparation
from recforge.errors import CheckpointError, ConfigError, DataError, RecforgeError, TrainingError
from recforge.models import get_model, get_model_class, register_model
from recforge.quick_start import load_data_and_model, run
from recforge.trainer import AbstractTrainer, Callback, Trainer, get_trainer
from recforge.utils.seed import init_seed

__version__ = "0.1.0"

__all__ = [
    "AbstractTrainer",
    "Callback",
    "CheckpointError",
    "Config",
    "ConfigError",
    "DataError",
    "Dataset",
    "Interaction",
    "RecforgeError",
    "Trainer",
    "TrainingError",
    "__version__",
    "create_dataset",
    "data_preparation",
    "get_model",
    "get_model_class",
    "get_trainer",
    "init_seed",
    "load_data_and_model",
    "register_model",
    "run",
]
