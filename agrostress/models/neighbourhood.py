"""Neighbourhood statistics of image planes for FFDNN's spatial context, compiled (numba).

For every pixel of a block of image rows and every plane (one feature on one date), the
centre value and the mean and standard deviation over the ``(2r+1)²`` window, with the image
reflected at its border (numpy's ``reflect`` mode, repeated for images smaller than the
window). One pass over the planes replaces the padded copy, the two box filters, the square,
the standard deviation and the concatenation of the torch formulation
(:func:`neighbourhood_torch`, which computes the same function and serves other dtypes).
"""

from __future__ import annotations

import numba
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..numba_threads import compile_serial_parallel, run_kernel


@numba.njit(inline="always")
def _reflect(i: int, n: int) -> int:
    """Index ``i`` folded into ``[0, n)`` by mirror reflection (period ``2(n - 1)``); also
    callable from Python (the torch reference uses it)."""
    if n == 1:
        return 0
    period = 2 * (n - 1)
    i = i % period
    return period - i if i >= n else i


# strict IEEE arithmetic (no fastmath): a pixel's statistics must not depend on whether its
# column falls in a SIMD body or a scalar remainder, so tiles reproduce a single pass exactly
def _neighbourhood_rows(
    img: np.ndarray, y0: int, ny: int, r: int, n_feat: int, out: np.ndarray
) -> None:  # pragma: no cover - compiled below
    planes, h, w = img.shape
    inv = np.float32(1.0 / (2 * r + 1) ** 2)
    for p in numba.prange(planes):
        t, f = p // n_feat, p % n_feat
        col = np.empty(w + 2 * r, np.float32)  # column sums, reflect-padded by r on each side
        col_sq = np.empty(w + 2 * r, np.float32)
        acc = np.empty(w, np.float32)
        acc_sq = np.empty(w, np.float32)
        for y in range(ny):
            yy = y0 + y
            col[:] = 0.0
            col_sq[:] = 0.0
            for dy in range(-r, r + 1):  # every inner loop runs along contiguous x (SIMD)
                row = img[p, _reflect(yy + dy, h)]
                for x in range(w):
                    v = row[x]
                    col[x + r] += v
                    col_sq[x + r] += v * v
            for k in range(r):  # the padding columns mirror the image columns
                a, b = _reflect(-r + k, w), _reflect(w + k, w)
                col[k], col_sq[k] = col[a + r], col_sq[a + r]
                col[w + r + k], col_sq[w + r + k] = col[b + r], col_sq[b + r]
            acc[:] = col[:w]
            acc_sq[:] = col_sq[:w]
            for dx in range(1, 2 * r + 1):
                for x in range(w):
                    acc[x] += col[x + dx]
                    acc_sq[x] += col_sq[x + dx]
            centre, mean, std = out[t, f, y], out[t, n_feat + f, y], out[t, 2 * n_feat + f, y]
            row = img[p, yy]
            for x in range(w):
                m = acc[x] * inv
                centre[x] = row[x]
                mean[x] = m
                std[x] = np.sqrt(max(acc_sq[x] * inv - m * m, np.float32(0.0)))


_NEIGHBOURHOOD = compile_serial_parallel(_neighbourhood_rows)


def neighbourhood_rows(img: Tensor, n_steps: int, y0: int, ny: int, r: int) -> Tensor:
    """Time-major planes ``(T·F, H, W)`` → ``(T, 3F, ny, W)``: per date the centre, window
    mean and window standard deviation of each feature, for image rows ``y0 … y0+ny-1``.

    float32 CPU tensors run the compiled kernel; other inputs :func:`neighbourhood_torch`.
    """
    planes, h, w = img.shape
    n_feat = planes // n_steps
    if img.dtype != torch.float32 or img.device.type != "cpu":
        return neighbourhood_torch(img, n_steps, y0, ny, r)
    out = torch.empty(n_steps, 3 * n_feat, ny, w, dtype=img.dtype)
    src = img.detach().contiguous().numpy()
    run_kernel(_NEIGHBOURHOOD, src, y0, ny, r, n_feat, out.numpy())
    return out


#: variances at or below this count as zero where gradients flow (see std_from_moments)
VAR_EPS = 1e-12


def std_from_moments(mean: Tensor, mean_sq: Tensor) -> Tensor:
    """Standard deviation from E[x] and E[x²] (clamped against rounding below zero).

    Where gradients flow (training, explanations), a variance ≤ :data:`VAR_EPS` gives 0 with a
    zero gradient: ``sqrt`` has an infinite slope at 0, and a patch of identical pixels (a
    uniform field, a gap filled with one value) would otherwise turn every attribution of the
    pixel into NaN."""
    var = (mean_sq - mean.pow(2)).clamp_min(0)
    if not var.requires_grad:
        return var.sqrt()
    return torch.where(var > VAR_EPS, var.clamp_min(VAR_EPS).sqrt(), torch.zeros_like(var))


def neighbourhood_torch(img: Tensor, n_steps: int, y0: int, ny: int, r: int) -> Tensor:
    """Reference of :func:`neighbourhood_rows` in torch (any dtype or device)."""
    planes, h, w = img.shape
    rows = torch.tensor([_reflect(y0 + y, h) for y in range(-r, ny + r)], device=img.device)
    cols = torch.tensor([_reflect(x, w) for x in range(-r, w + r)], device=img.device)
    block = img[:, rows][:, :, cols]  # (P, ny + 2r, W + 2r)
    k = 2 * r + 1
    mean = F.avg_pool2d(block[None], k, stride=1)[0]
    mean_sq = F.avg_pool2d(block.pow(2)[None], k, stride=1)[0]
    std = std_from_moments(mean, mean_sq)
    centre = block[:, r : r + ny, r : r + w]
    parts = [p.unflatten(0, (n_steps, planes // n_steps)) for p in (centre, mean, std)]
    return torch.cat(parts, dim=1)
