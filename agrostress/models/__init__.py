"""Models: FFDNN, the zoo, the registry and checkpoints.

``create_model(name, n_features=…, n_steps=…)`` builds any registered model;
``load(DIR)`` is the one way to load a checkpoint.

The checkpoint and forest names are imported on first use, so that building and running the
networks needs torch alone (not the geospatial stack the checkpoint cards are validated with).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from agrostress.models import ffdnn, spatial, temporal  # noqa: F401  (register models)
from agrostress.models.registry import create_model, list_models, register_model

if TYPE_CHECKING:
    from agrostress.models.checkpoint import CheckpointError, LoadedModel, ModelCard, load, save
    from agrostress.models.forest import ForestModel

_LAZY = {
    "CheckpointError": "checkpoint",
    "LoadedModel": "checkpoint",
    "ModelCard": "checkpoint",
    "load": "checkpoint",
    "save": "checkpoint",
    "ForestModel": "forest",
}

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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"agrostress.models.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'agrostress.models' has no attribute {name!r}")
