"""Using a trained model: ``load`` it with what it needs to score (``serving.npz`` of its run), ``recommend``,
and score rankings produced elsewhere (``evaluate_predictions``)."""

from recforge.serving.loaded import LoadedModel, load
from recforge.serving.rebuild import load_data_and_model
from recforge.trainer.serving_file import ServingData

__all__ = ["LoadedModel", "ServingData", "load", "load_data_and_model"]
