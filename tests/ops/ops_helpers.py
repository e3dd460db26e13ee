"""Helpers for the operator-library tests (small sizes: the CPU is shared)."""

from __future__ import annotations

import torch

from agrostress.ops import create_op, list_ops
from tests.bn_helpers import randomize_bn  # noqa: F401  (re-exported for the operator tests)

ALL_OPS = [(name, 1) for name in list_ops(dims=1)] + [(name, 2) for name in list_ops(dims=2)]
SIZE_2D = (5, 6)


def make(name: str, dims: int, channels: int = 8, length: int = 12, **kw):
    size = length if dims == 1 else SIZE_2D
    return create_op(name, channels=channels, length=size, dims=dims, **kw)


def sample(dims: int, batch: int = 3, channels: int = 8, length: int = 12, **kw) -> torch.Tensor:
    shape = (length,) if dims == 1 else SIZE_2D
    return torch.randn(batch, channels, *shape, **kw)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm().clamp_min(1e-12)).item()
