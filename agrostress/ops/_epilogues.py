"""Compiled (numba) CPU epilogues of the Fourier unit's no-grad inference path.

Each one is a single pass over cache-resident data where torch needs two or three: a
broadcast bias add and a ReLU in place, and the unit's output written straight into the
caller's tensor (ReLU of the local convolutions, plus the global branch on the global
channels) instead of an add, a ReLU and a copy. ReLU keeps NaN as torch does (strict IEEE
arithmetic, no fastmath). Inputs are contiguous float32/float64 CPU tensors;
:func:`supported` says when a tensor qualifies, and callers fall back to torch otherwise.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor

from ..numba_threads import compile_serial_parallel, run_kernel

__all__ = ["bias_relu_", "relu_local_global", "supported"]

_DTYPES = (torch.float32, torch.float64)


def _bias_relu(a: np.ndarray, bias: np.ndarray) -> None:  # pragma: no cover - compiled below
    n, c_, t_ = a.shape
    for i in numba.prange(n):
        for c in range(c_):
            b = bias[c]
            for t in range(t_):
                v = a[i, c, t] + b
                a[i, c, t] = 0.0 if v < 0.0 else v


def _relu_local_global(
    local_l: np.ndarray, local_g: np.ndarray, g: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - compiled below
    n, cl, t_ = local_l.shape
    cg = local_g.shape[1]
    for i in numba.prange(n):
        for c in range(cl):
            for t in range(t_):
                v = local_l[i, c, t]
                out[i, c, t] = 0.0 if v < 0.0 else v
        for c in range(cg):
            for t in range(t_):
                v = local_g[i, c, t] + g[i, c, t]
                out[i, cl + c, t] = 0.0 if v < 0.0 else v


_BIAS_RELU = compile_serial_parallel(_bias_relu)
_RELU_LOCAL_GLOBAL = compile_serial_parallel(_relu_local_global)


def supported(*tensors: Tensor) -> bool:
    """Whether the compiled epilogues can take these tensors: CPU, contiguous, one dtype
    (float32 or float64), no autograd history."""
    first = tensors[0]
    return all(
        t.device.type == "cpu"
        and t.dtype == first.dtype
        and t.dtype in _DTYPES
        and t.is_contiguous()
        and not t.requires_grad
        for t in tensors
    )


def bias_relu_(a: Tensor, bias: Tensor) -> Tensor:
    """``a = relu(a + bias[None, :, None])`` in place for ``a (N, C, L)``; returns ``a``."""
    if a.dim() != 3 or bias.shape != (a.shape[1],):
        raise ValueError(f"bias_relu_ needs (N, C, L) and (C,), got {a.shape}, {bias.shape}")
    run_kernel(_BIAS_RELU, a.numpy(), bias.numpy())
    return a


def relu_local_global(local_l: Tensor, local_g: Tensor, g: Tensor, out: Tensor) -> Tensor:
    """``out = relu([local_l | local_g + g])``: the unit's output from its local
    convolutions into the local (``C_l``) and the global (``C_g``) channels and the global
    branch ``g (N, C_g, L)``; ``out (N, C_l + C_g, L)``. Returns ``out``."""
    n, cl, length = local_l.shape
    cg = local_g.shape[1]
    if (
        local_g.shape != (n, cg, length)
        or g.shape != local_g.shape
        or out.shape != (n, cl + cg, length)
    ):
        raise ValueError(
            f"relu_local_global shapes: local_l {local_l.shape}, local_g {local_g.shape}, "
            f"g {g.shape}, out {out.shape}"
        )
    run_kernel(_RELU_LOCAL_GLOBAL, local_l.numpy(), local_g.numpy(), g.numpy(), out.numpy())
    return out
