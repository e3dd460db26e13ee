"""LS convolution (LSNet; Wang et al., "LSNet: See Large, Focus Small", CVPR 2025).

Large-kernel perception (LKP) - 1x1 (``C -> C/2``) + BN + ReLU, depthwise ``lks = 7`` + BN,
1x1 + BN + ReLU, 1x1 to ``sks^d * G`` channels, GroupNorm - generates per-position small
kernels (``sks = 3`` taps, ``3 x 3`` in 2-D) in ``G = C / groups`` weight sets; small-kernel
aggregation (SKA) applies them depthwise, channel ``c`` using set ``c % G`` (the official
kernel's indexing). ``out = BN(SKA(x, LKP(x))) + x`` (the residual is part of LSConv).

The official SKA is a CUDA/Triton kernel; this one is pure PyTorch: one shifted
multiply-accumulate per tap on a zero-padded input (no unfold buffer), differentiable by
autograd and usable on CPU.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._common import batch_norm, dw_conv, pointwise
from .registry import register_op

__all__ = ["LSConv", "ska"]


def ska(x: Tensor, w: Tensor) -> Tensor:
    """Small-kernel aggregation: ``x (B, C, *S)``, ``w (B, G, k^d, *S)`` ->
    ``y[b, c, s] = sum_taps x[b, c, s + tap - p] * w[b, c % G, tap, s]`` ("same", zeros)."""
    bsz, c = x.shape[:2]
    spatial = x.shape[2:]
    g = w.shape[1]
    k = round(w.shape[2] ** (1 / len(spatial)))
    p = k // 2
    xp = F.pad(x, (p, p) * len(spatial))
    y = None
    for t, offs in enumerate(itertools.product(range(k), repeat=len(spatial))):
        win = xp[(..., *[slice(o, o + n) for o, n in zip(offs, spatial, strict=True)])]
        term = win.reshape(bsz, c // g, g, *spatial) * w[:, None, :, t]
        y = term if y is None else y + term
    assert y is not None
    return y.reshape(bsz, c, *spatial)


@register_op("lsconv", dims=(1, 2))
class LSConv(nn.Module):
    """LSNet's LS convolution (large-kernel perception, small-kernel aggregation)."""

    def __init__(
        self,
        channels: int,
        length: int | None = None,
        dims: int = 1,
        lks: int = 7,
        sks: int = 3,
        groups: int = 8,
        path: str = "auto",
    ) -> None:
        super().__init__()
        h = max(1, channels // 2)
        g = max(1, channels // groups)
        while channels % g:
            g -= 1
        self.dims, self.sks, self.g, self.path = dims, sks, g, path

        def w(cout: int, cin: int) -> nn.Parameter:
            t = torch.empty(cout, cin)
            nn.init.kaiming_uniform_(t, a=math.sqrt(5))
            return nn.Parameter(t)

        self.w1, self.bn1 = w(h, channels), batch_norm(dims, h)
        self.w2 = nn.Parameter(torch.empty(h, *((lks,) * dims)))
        nn.init.uniform_(self.w2, -1 / math.sqrt(lks**dims), 1 / math.sqrt(lks**dims))
        self.bn2 = batch_norm(dims, h)
        self.w3, self.bn3 = w(h, h), batch_norm(dims, h)
        taps = sks**dims
        self.w4, self.b4 = w(taps * g, h), nn.Parameter(torch.zeros(taps * g))
        self.gn = nn.GroupNorm(g, taps * g)
        self.bn = batch_norm(dims, channels)

    def lkp(self, x: Tensor) -> Tensor:
        """Large-kernel perception: dynamic weights ``(B, G, sks^d, *S)``."""
        a = F.relu(self.bn1(pointwise(x, self.w1)))
        a = self.bn2(dw_conv(a, self.w2, path=self.path))
        a = F.relu(self.bn3(pointwise(a, self.w3)))
        wts = self.gn(pointwise(a, self.w4, self.b4))
        return wts.view(x.shape[0], self.g, self.sks**self.dims, *x.shape[2:])

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(ska(x, self.lkp(x))) + x
