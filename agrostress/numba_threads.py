"""Compiled numba kernels that follow torch's intra-op thread count.

Kernels that run between torch operators (inference paths) should use as many threads as
torch does: serially when torch runs on one thread, on numba's pool otherwise, so that
``--threads 1`` (or ``torch.set_num_threads(1)`` in a worker) means one thread throughout.
numba's own thread count (all cores by default) is left alone.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import numba
import torch

__all__ = ["compile_serial_parallel", "run_kernel"]

Kernels = tuple[Callable[..., Any], Callable[..., Any]]


def compile_serial_parallel(fn: Callable[..., Any]) -> Kernels:
    """Serial and parallel (``prange``) builds of ``fn``, both cached on disk. The parallel
    build compiles a renamed copy: numba's cache keys on the function's name, so two builds
    of one function would load each other's machine code."""
    twin = types.FunctionType(fn.__code__, fn.__globals__, f"{fn.__name__}_parallel")
    twin.__qualname__ = twin.__name__
    twin.__defaults__ = fn.__defaults__
    return numba.njit(cache=True)(fn), numba.njit(parallel=True, cache=True)(twin)


def run_kernel(kernels: Kernels, *args: Any) -> Any:
    """Call the serial build when torch uses one thread, else the parallel one."""
    return kernels[torch.get_num_threads() > 1](*args)
