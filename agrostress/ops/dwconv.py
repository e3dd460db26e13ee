"""Plain depthwise convolution (the ConvNeXt token mixer and the benchmark reference).

Not a paper operator: the "same"-padded depthwise ``k``-tap convolution every mixer is
compared with, with the dense Toeplitz fast path of :func:`agrostress.ops._common.dw_conv1d`
on short series (``F.conv1d`` is far slower on CPU at ``L`` of a few dozen).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ._common import dw_conv
from .registry import register_op

__all__ = ["DepthwiseConv"]


@register_op("dwconv", dims=(1, 2))
class DepthwiseConv(nn.Module):
    """Depthwise convolution, odd ``kernel_size``, "same" padding, with bias."""

    def __init__(
        self,
        channels: int,
        length: int | None = None,
        dims: int = 1,
        kernel_size: int = 7,
        dilation: int = 1,
        path: str = "auto",
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError("kernel_size must be odd")
        self.dims, self.dilation, self.path = dims, dilation, path
        self.weight = nn.Parameter(torch.empty(channels, *((kernel_size,) * dims)))
        self.bias = nn.Parameter(torch.zeros(channels))
        nn.init.uniform_(
            self.weight, -1 / math.sqrt(kernel_size**dims), 1 / math.sqrt(kernel_size**dims)
        )

    def orthogonality_kernels(self) -> list[Tensor]:
        """Depthwise kernels for :func:`agrostress.ops.orthogonality_loss`."""
        return [self.weight]

    def forward(self, x: Tensor) -> Tensor:
        return dw_conv(x, self.weight, self.bias, self.dilation, self.path)
