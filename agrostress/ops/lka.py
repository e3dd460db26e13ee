"""Large kernel attention (VAN, Guo et al., "Visual Attention Network", CVM 2023).

``attn = conv1x1(DW_{7, dilation 3}(DW_5(x)))``, ``out = x * attn``: a 23-tap receptive
field (``5 + 6 * 3``) from 5 + 7 weights per channel, used as a cheap gating.

1-D dense path: the two depthwise convs are composed exactly - boundary zeros included -
as one Toeplitz matrix per channel, ``T = T_dil @ T_5`` (plus the first bias pushed through
``T_dil``), so the data sees one batched matmul instead of two convolutions.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ._common import apply_toeplitz, dw_conv, pointwise, resolve_path, toeplitz
from .registry import register_op

__all__ = ["LargeKernelAttention"]


@register_op("lka", dims=(1, 2))
class LargeKernelAttention(nn.Module):
    """VAN's LKA: depthwise 5, depthwise 7 with dilation 3, 1x1 conv, multiplicative gate."""

    def __init__(
        self,
        channels: int,
        length: int | None = None,
        dims: int = 1,
        kernel_size: int = 5,
        dilated_kernel_size: int = 7,
        dilation: int = 3,
        path: str = "auto",
    ) -> None:
        super().__init__()
        self.dims, self.dilation, self.path = dims, dilation, path

        def dw(k: int) -> nn.Parameter:
            w = torch.empty(channels, *((k,) * dims))
            nn.init.uniform_(w, -1 / math.sqrt(k**dims), 1 / math.sqrt(k**dims))
            return nn.Parameter(w)

        self.w0, self.b0 = dw(kernel_size), nn.Parameter(torch.zeros(channels))
        self.w_sp, self.b_sp = dw(dilated_kernel_size), nn.Parameter(torch.zeros(channels))
        self.w1 = nn.Parameter(torch.empty(channels, channels))
        nn.init.kaiming_uniform_(self.w1, a=math.sqrt(5))
        self.b1 = nn.Parameter(torch.zeros(channels))

    def orthogonality_kernels(self) -> list[Tensor]:
        """Depthwise kernels for :func:`agrostress.ops.orthogonality_loss`."""
        return [self.w0, self.w_sp]

    def spatial(self, x: Tensor) -> Tensor:
        """``DW_dil(DW(x))`` (both with bias)."""
        length = x.shape[-1]
        if self.dims == 1 and resolve_path(self.path, length, x.device, "direct") == "dense":
            k0, ks = self.w0.shape[-1], self.w_sp.shape[-1]
            t0 = toeplitz(self.w0, length, (k0 - 1) // 2)
            ts = toeplitz(self.w_sp, length, self.dilation * (ks - 1) // 2, self.dilation)
            bias = self.b0[:, None] * ts.sum(-1) + self.b_sp[:, None]  # (C, L)
            return apply_toeplitz(x, ts @ t0) + bias
        y = dw_conv(x, self.w0, self.b0, path=self.path)
        return dw_conv(y, self.w_sp, self.b_sp, dilation=self.dilation, path=self.path)

    def forward(self, x: Tensor) -> Tensor:
        return x * pointwise(self.spatial(x), self.w1, self.b1)
