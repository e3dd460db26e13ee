"""Training and evaluation: sampling from labelled cubes, field-level split, the loop, metrics."""

from agrostress.training.data import TrainingData, field_split, load_training_data
from agrostress.training.evaluate import evaluate_model, predict_cube_features
from agrostress.training.loop import TrainConfig, train_model
from agrostress.training.metrics import classification_report, expected_calibration_error

__all__ = [
    "TrainConfig",
    "TrainingData",
    "classification_report",
    "evaluate_model",
    "expected_calibration_error",
    "field_split",
    "load_training_data",
    "predict_cube_features",
    "train_model",
]
