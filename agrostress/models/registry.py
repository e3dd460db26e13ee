"""Model registry: ``create_model(name, n_features=…, n_steps=…, n_classes=…, **config)``.

A plain dictionary filled by ``@register_model``; every entry builds a model with the same
input contract — normalised feature series ``(B, T, F)`` for pixel models, patches
``(B, T, F, P, P)`` for spatio-temporal ones (``model.context = P // 2``) — and returning
logits ``(B, n_classes)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_REGISTRY: dict[str, Callable[..., Any]] = {}


def register_model(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator adding a model constructor under ``name``."""

    def deco(factory: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY and _REGISTRY[name] is not factory:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return deco


def _ensure_loaded() -> None:
    import agrostress.models  # noqa: F401  (importing the package registers every model)


def list_models() -> list[str]:
    """Sorted names of every registered model."""
    _ensure_loaded()
    return sorted(_REGISTRY)


def create_model(name: str, *, n_features: int, n_steps: int, n_classes: int = 3, **config: Any):
    """Build the model ``name`` for inputs of ``n_steps`` × ``n_features``."""
    _ensure_loaded()
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None
    return factory(n_features=n_features, n_steps=n_steps, n_classes=n_classes, **config)
