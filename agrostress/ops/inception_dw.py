"""Inception depthwise convolution (InceptionNeXt, Yu et al., CVPR 2024).

Channels are split into an identity part and depthwise branches: 2-D uses a ``3x3`` square
kernel and ``1x11`` / ``11x1`` band kernels on ``g = int(C * branch_ratio)`` channels each
(``C - 3g`` identity channels); in 1-D the two bands collapse to one ``11``-tap kernel, so
the split is identity / ``k=3`` / ``k=11``. With small ``C`` the branches get very few
channels (``g = max(1, int(C / 8))``); the paper reports accuracy loss there.

1-D fast path: the ``k=3`` kernels are zero-padded (centred) to 11 taps, which leaves the
"same" convolution unchanged, so both branches run as one depthwise conv.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._common import dw_conv
from .registry import register_op

__all__ = ["InceptionDWConv"]


def _center_pad(w: Tensor, size: int) -> Tensor:
    pad = (size - w.shape[-1]) // 2
    return F.pad(w, (pad, pad))


@register_op("inception_dw", dims=(1, 2))
class InceptionDWConv(nn.Module):
    """InceptionNeXt token mixer (depthwise branches with bias, identity rest)."""

    def __init__(
        self,
        channels: int,
        length: int | None = None,
        dims: int = 1,
        square_kernel_size: int = 3,
        band_kernel_size: int = 11,
        branch_ratio: float = 0.125,
        path: str = "auto",
    ) -> None:
        super().__init__()
        if square_kernel_size % 2 != 1 or band_kernel_size % 2 != 1:
            raise ValueError("kernel sizes must be odd")
        nbr = 2 if dims == 1 else 3
        g = max(1, int(channels * branch_ratio))
        if channels < nbr * g:
            raise ValueError(f"need at least {nbr * g} channels")
        self.dims, self.g, self.path = dims, g, path
        self.ks, self.kb = square_kernel_size, band_kernel_size
        self.n_id = channels - nbr * g

        def param(*shape: int) -> nn.Parameter:
            w = torch.empty(*shape)
            fan_in = math.prod(shape[1:])
            nn.init.uniform_(w, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
            return nn.Parameter(w)

        self.w_sq = param(g, *((square_kernel_size,) * dims))
        if dims == 1:
            self.w_band = param(g, band_kernel_size)
        else:
            self.w_w = param(g, 1, band_kernel_size)
            self.w_h = param(g, band_kernel_size, 1)
        self.bias = nn.Parameter(torch.zeros(nbr * g))

    def forward(self, x: Tensor) -> Tensor:
        x_id, x_br = x[:, : self.n_id], x[:, self.n_id :]
        if self.dims == 1:
            size = max(self.ks, self.kb)
            w = torch.cat([_center_pad(self.w_sq, size), _center_pad(self.w_band, size)])
            y = dw_conv(x_br, w, self.bias, path=self.path)
            return torch.cat([x_id, y], dim=1)
        g, b = self.g, self.bias
        x_sq, x_w, x_h = x_br.split(g, dim=1)
        p_s, p_b = self.ks // 2, self.kb // 2
        y_sq = F.conv2d(x_sq, self.w_sq[:, None], b[:g], padding=p_s, groups=g)
        y_w = F.conv2d(x_w, self.w_w[:, None], b[g : 2 * g], padding=(0, p_b), groups=g)
        y_h = F.conv2d(x_h, self.w_h[:, None], b[2 * g :], padding=(p_b, 0), groups=g)
        return torch.cat([x_id, y_sq, y_w, y_h], dim=1)
