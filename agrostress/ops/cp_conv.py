"""A-priori compressed convolution (CP format; after "A priori compression of convolutional
neural networks for wave simulators", 2023).

A full ``C_out x C_in x k`` (``x k``) kernel is replaced, before training, by a sum of ``R``
outer products of one-way filters::

    1-D: W[o, i, t]    = sum_r A[o, r] B[i, r] T[r, t]
    2-D: W[o, i, y, x] = sum_r A[o, r] B[i, r] Y[r, y] X[r, x]

so each rank term costs ``C_out + C_in + k (+ k)`` parameters instead of ``C_out C_in k``.
Executed in factored form - 1x1 (``C -> R``), depthwise ``k`` taps per rank channel
(separable ``k x 1`` then ``1 x k`` in 2-D), 1x1 (``R -> C``) - which is exactly the
convolution with the materialised kernel (:meth:`CPConv.dense_weight`). No public code
exists; this is our reading of the paper.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._common import dw_conv, pointwise
from .registry import register_op

__all__ = ["CPConv"]


@register_op("cp_conv", dims=(1, 2))
class CPConv(nn.Module):
    """Full ``C -> C`` convolution in CP (rank-``R``) format, "same" padding, with bias."""

    def __init__(
        self,
        channels: int,
        length: int | None = None,
        dims: int = 1,
        kernel_size: int = 7,
        rank: int | None = None,
        path: str = "auto",
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError("kernel_size must be odd")
        r = rank or max(4, channels // 2)
        self.dims, self.kernel_size, self.rank, self.path = dims, kernel_size, r, path
        # factor std s such that the materialised kernel (a sum of R products of 2 + dims
        # factors, variance R * s**(2 (2 + dims))) matches PyTorch's default conv init
        # variance 1 / (3 fan_in)
        fan_in = channels * kernel_size**dims
        std = (1.0 / (3 * fan_in * r)) ** (1 / (2 * (2 + dims)))
        self.A = nn.Parameter(torch.randn(channels, r) * std)
        self.B = nn.Parameter(torch.randn(channels, r) * std)
        self.T = nn.Parameter(torch.randn(dims, r, kernel_size) * std)
        self.bias = nn.Parameter(torch.zeros(channels))

    def dense_weight(self) -> Tensor:
        """The materialised kernel ``(C, C, k)`` / ``(C, C, k, k)``."""
        if self.dims == 1:
            return torch.einsum("or,ir,rt->oit", self.A, self.B, self.T[0])
        return torch.einsum("or,ir,ry,rx->oiyx", self.A, self.B, self.T[0], self.T[1])

    def forward(self, x: Tensor) -> Tensor:
        z = pointwise(x, self.B.T)  # (B, R, *)
        if self.dims == 1:
            z = dw_conv(z, self.T[0], path=self.path)
        else:
            p = self.kernel_size // 2
            z = F.conv2d(z, self.T[0][:, None, :, None], padding=(p, 0), groups=self.rank)
            z = F.conv2d(z, self.T[1][:, None, None, :], padding=(0, p), groups=self.rank)
        return pointwise(z, self.A, self.bias)
