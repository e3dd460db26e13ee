"""Banded local self-attention (the attention reference; after neighbourhood attention,
Hassani et al., CVPR 2023).

Multi-head softmax attention where each position attends only to positions within
``window // 2`` steps (Chebyshev distance in 2-D), with a learnable relative-position bias
per head and offset. At ``L <= 40`` a dense masked attention (one ``L x L`` score matrix,
``-inf`` outside the band, ``F.scaled_dot_product_attention``) is cheaper than special
kernels. Unlike NAT, windows are clipped (not shifted) at the borders.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._common import head_count, merge_heads, qkv_heads
from .registry import register_op

__all__ = ["LocalAttention"]


@functools.lru_cache(maxsize=64)
def _band(spatial: tuple[int, ...], radius: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """For ``N = prod(spatial)`` tokens: relative-offset index ``(N, N)`` into the bias table
    and the in-window mask."""
    grids = torch.meshgrid(*[torch.arange(n, device=device) for n in spatial], indexing="ij")
    pos = torch.stack([g.flatten() for g in grids], dim=-1)  # (N, d)
    rel = pos[None, :, :] - pos[:, None, :]  # (N, N, d)
    inside = (rel.abs() <= radius).all(-1)
    width = 2 * radius + 1
    idx = torch.zeros(rel.shape[:2], dtype=torch.long, device=device)
    for axis in range(rel.shape[-1]):
        idx = idx * width + (rel[..., axis].clamp(-radius, radius) + radius)
    return idx, inside


@register_op("local_attention", dims=(1, 2))
class LocalAttention(nn.Module):
    """Banded multi-head self-attention with relative-position bias."""

    def __init__(
        self,
        channels: int,
        length: int | None = None,
        dims: int = 1,
        heads: int | None = None,
        window: int = 7,
        qkv_bias: bool = True,
    ) -> None:
        super().__init__()
        h = head_count(channels, heads)
        self.dims, self.heads, self.radius = dims, h, window // 2
        self.qkv = nn.Linear(channels, 3 * channels, bias=qkv_bias)
        self.proj = nn.Linear(channels, channels)
        self.rpb = nn.Parameter(torch.zeros(h, (2 * self.radius + 1) ** dims))
        nn.init.trunc_normal_(self.rpb, std=0.02)

    def attn_bias(
        self, spatial: tuple[int, ...], device: torch.device, dtype: torch.dtype
    ) -> Tensor:
        """Additive attention mask ``(heads, N, N)``: bias inside the band, ``-inf`` outside."""
        idx, inside = _band(spatial, self.radius, device)
        bias = self.rpb.to(dtype)[:, idx]
        return bias.masked_fill(~inside, float("-inf"))

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = qkv_heads(x, self.qkv, self.heads)
        o = F.scaled_dot_product_attention(
            q, k, v, attn_mask=self.attn_bias(tuple(x.shape[2:]), x.device, x.dtype)
        )
        return merge_heads(o, x, self.proj)
