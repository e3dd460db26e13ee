"""ConvNeXt block (Liu et al., "A ConvNet for the 2020s", CVPR 2022).

``x + gamma * Linear_2(GELU(Linear_1(LN(DW_7(x)))))`` with a 4x expansion and layer scale
``gamma`` initialised to ``1e-6``; the LN and MLP run channels-last as in the reference code.
The block includes its residual. The depthwise token mixer can be swapped for any registered
operator (``mixer="fourier"``, ``mixer="lka"``, ...): "the reference block every mixer plugs
into".
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .registry import create_op, register_op

__all__ = ["ConvNeXtBlock"]


@register_op("convnext", dims=(1, 2))
class ConvNeXtBlock(nn.Module):
    """ConvNeXt block with a pluggable token mixer (default: depthwise 7-tap conv)."""

    def __init__(
        self,
        channels: int,
        length: int | None = None,
        dims: int = 1,
        kernel_size: int = 7,
        mlp_ratio: float = 4.0,
        layer_scale_init: float = 1e-6,
        mixer: str = "dwconv",
        mixer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        kw = dict(mixer_kwargs or {})
        if mixer == "dwconv":
            kw.setdefault("kernel_size", kernel_size)
        self.mixer = create_op(mixer, channels=channels, length=length, dims=dims, **kw)
        hidden = int(mlp_ratio * channels)
        self.norm = nn.LayerNorm(channels, eps=1e-6)
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)
        self.gamma = nn.Parameter(torch.full((channels,), float(layer_scale_init)))
        for fc in (self.fc1, self.fc2):
            nn.init.trunc_normal_(fc.weight, std=0.02)
            nn.init.zeros_(fc.bias)

    def forward(self, x: Tensor) -> Tensor:
        y = self.mixer(x).movedim(1, -1)  # channels-last
        y = self.fc2(F.gelu(self.fc1(self.norm(y))))
        return x + (y * self.gamma).movedim(-1, 1)
