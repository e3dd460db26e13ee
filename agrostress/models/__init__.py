"""Models: FFDNN, the zoo, the registry and checkpoints.

``create_model(name, n_features=…, n_steps=…)`` builds any registered model;
``load(DIR)`` is the one way to load a checkpoint.
"""

from agrostress.models import ffdnn, spatial, temporal  # noqa: F401  (register models)
from agrostress.models.checkpoint import (
    CheckpointError,
    LoadedModel,
    ModelCard,
    load,
    save,
)
from agrostress.models.forest import ForestModel
from agrostress.models.registry import create_model, list_models, register_model

__all__ = [
    "CheckpointError",
    "ForestModel",
    "LoadedModel",
    "ModelCard",
    "create_model",
    "list_models",
    "load",
    "register_model",
    "save",
]
