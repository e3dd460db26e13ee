"""Operator registry: one name -> one constructor, filled by the ``@register_op`` decorator.

Every registered constructor accepts ``channels``, ``length`` and ``dims`` keywords (the
length may be ``None`` for ops that do not need it) plus op-specific keywords, and returns an
``nn.Module`` mapping ``(B, C, L) -> (B, C, L)`` (``dims=1``) or ``(B, C, H, W) -> (B, C, H, W)``
(``dims=2``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

__all__ = ["OpSpec", "create_op", "get_op", "list_ops", "register_op"]


@dataclass(frozen=True)
class OpSpec:
    """What the registry knows about one operator."""

    name: str
    factory: Callable[..., nn.Module]
    dims: tuple[int, ...]
    needs_length: bool


_REGISTRY: dict[str, OpSpec] = {}


def register_op(
    name: str, dims: tuple[int, ...] = (1,), needs_length: bool = False
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Class decorator adding an operator to the registry under ``name``.

    ``dims`` lists the supported dimensionalities (1: time series, 2: images);
    ``needs_length`` marks ops whose constructor requires ``length`` (full-length kernels,
    dense DFT matrices).
    """

    def deco(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY and _REGISTRY[name].factory is not factory:
            raise ValueError(f"operator {name!r} is already registered")
        _REGISTRY[name] = OpSpec(name, factory, tuple(dims), needs_length)
        return factory

    return deco


def _ensure_loaded() -> None:
    # Importing the package registers every operator module.
    import agrostress.ops  # noqa: F401


def get_op(name: str) -> OpSpec:
    """Registry entry for ``name`` (``KeyError`` listing the known names if absent)."""
    _ensure_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown operator {name!r}; known: {', '.join(list_ops())}") from None


def list_ops(dims: int | None = None) -> list[str]:
    """Sorted registered names, optionally only those supporting ``dims``."""
    _ensure_loaded()
    return sorted(n for n, s in _REGISTRY.items() if dims is None or dims in s.dims)


def create_op(
    name: str, channels: int, length: int | None = None, dims: int = 1, **kwargs: Any
) -> nn.Module:
    """Build operator ``name`` for ``channels`` channels.

    ``length`` is the sequence length for 1-D ops (required by ops with ``needs_length``;
    for 2-D ops it may be an ``(H, W)`` tuple where an op needs the spatial size).
    """
    spec = get_op(name)
    if dims not in spec.dims:
        raise ValueError(f"operator {name!r} supports dims {spec.dims}, not {dims}")
    if spec.needs_length and length is None:
        raise ValueError(f"operator {name!r} needs length=")
    return spec.factory(channels=channels, length=length, dims=dims, **kwargs)
