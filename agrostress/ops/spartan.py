"""SpaRTAN mixers (Pay et al., "SpaRTAN: Spatial Reinforcement Token-based Aggregation
Network for Visual Recognition", IJCNN 2025), after the official code.

* **Spatial mixer.** 1x1 (``C -> C/2``), a learnable push away from the per-sample mean,
  then two branches with different receptive fields - ``3``-tap conv + BN + GELU, and two
  ``3``-tap convs with dilation 2 (the second with BN + GELU) - each with squeeze-excitation;
  concatenated and mixed by a 1x1 conv.
* **Channel "wave" mixer.** ``theta = GELU(1x1(x))`` and ``w = 1x1(x)`` (``C -> rC``);
  ``feat = w * theta + w[argmax_c x] * theta[argmax_c x]``; adjacent channel pairs are read
  as complex numbers and multiplied by a learnable complex vector (amplitude x phase);
  then a grouped 3-tap conv + BN + GELU, squeeze-excitation and a 1x1 back to ``C``.
* **Block** (what the registry returns): ``x += s1 * spatial(GN(x)); x += s2 * channel(GN(x))``
  with GroupNorm(1) "LayerNorm" and layer scales ``1e-5``; includes its residual.

``grouped=True`` (default) is the official late-stage setting (depthwise spatial convs,
channel conv grouped by input channel); ``grouped=False`` the early-stage one (full spatial
convs, depthwise channel conv).
Evidence for the design is ImageNet only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._common import batch_norm, conv_nd, dw_conv
from .registry import register_op

__all__ = ["SpaRTANBlock", "SpatialMixer", "WaveChannelMixer"]


class _ConvBNAct(nn.Module):
    def __init__(
        self,
        dims: int,
        cin: int,
        cout: int,
        k: int,
        dilation: int = 1,
        groups: int = 1,
        norm_act: bool = True,
    ) -> None:
        super().__init__()
        self.conv = conv_nd(dims)(
            cin, cout, k, padding=dilation * (k // 2), dilation=dilation, groups=groups, bias=False
        )
        self.bn = batch_norm(dims, cout) if norm_act else None

    def forward(self, x: Tensor) -> Tensor:
        conv = self.conv
        if x.dim() == 3 and conv.groups == conv.in_channels == conv.out_channels:
            # depthwise 1-D: the dense Toeplitz fast path (same function as conv)
            x = dw_conv(x, conv.weight[:, 0], dilation=conv.dilation[0])
        else:
            x = conv(x)
        return F.gelu(self.bn(x)) if self.bn is not None else x


class _SE(nn.Module):
    def __init__(self, dims: int, c: int, squeeze: int) -> None:
        super().__init__()
        self.squeeze = conv_nd(dims)(c, max(1, squeeze), 1)
        self.expand = conv_nd(dims)(max(1, squeeze), c, 1)

    def forward(self, x: Tensor) -> Tensor:
        s = x.mean(dim=tuple(range(2, x.dim())), keepdim=True)
        return x * torch.sigmoid(self.expand(F.relu(self.squeeze(s))))


class SpatialMixer(nn.Module):
    """SpaRTAN's multi-receptive-field spatial mixer (``SMixer``)."""

    def __init__(self, dims: int, c: int, grouped: bool = True) -> None:
        super().__init__()
        h = max(1, c // 2)
        g = h if grouped else 1
        self.gamma = nn.Parameter(torch.full((1, h) + (1,) * dims, 1e-5))
        self.proj_in = conv_nd(dims)(c, h, 1)
        self.h_conv = _ConvBNAct(dims, h, h, 3, groups=g)
        self.l_conv = nn.Sequential(
            _ConvBNAct(dims, h, h, 3, dilation=2, groups=g, norm_act=False),
            _ConvBNAct(dims, h, h, 3, dilation=2, groups=g),
        )
        self.h_attn, self.l_attn = _SE(dims, h, h // 4), _SE(dims, h, h // 4)
        self.proj_out = conv_nd(dims)(2 * h, c, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.proj_in(x)
        x = x + self.gamma * (x - x.mean(dim=tuple(range(2, x.dim())), keepdim=True))
        return self.proj_out(
            torch.cat([self.h_attn(self.h_conv(x)), self.l_attn(self.l_conv(x))], dim=1)
        )


class WaveChannelMixer(nn.Module):
    """SpaRTAN's wave-based channel aggregation (``CMixer``)."""

    def __init__(self, dims: int, c: int, expand_ratio: int = 2, grouped: bool = True) -> None:
        super().__init__()
        if expand_ratio < 2:
            raise ValueError("expand_ratio must be >= 2")
        n = c * expand_ratio
        self.theta = conv_nd(dims)(c, n, 1)
        self.proj = conv_nd(dims)(c, n, 1)
        self.complex = nn.Parameter(torch.randn(n // 2, 2))
        self.conv = _ConvBNAct(dims, n, n, 3, groups=c if grouped else n)
        self.attn = _SE(dims, n, c // 4)
        self.proj_out = conv_nd(dims)(n, c, 1)

    def forward(self, x: Tensor) -> Tensor:
        idx = x.argmax(dim=1, keepdim=True)
        theta = F.gelu(self.theta(x))
        w = self.proj(x)
        feat = w * theta + w.gather(1, idx) * theta.gather(1, idx)
        bsz, n = feat.shape[:2]
        z = feat.view(bsz, n // 2, 2, *feat.shape[2:])  # channel pairs (2i, 2i + 1) = (re, im)
        cr, ci = self.complex[:, 0], self.complex[:, 1]
        shape = (1, -1) + (1,) * (feat.dim() - 2)
        cr, ci = cr.view(shape), ci.view(shape)
        zr, zi = z[:, :, 0], z[:, :, 1]
        feat = torch.stack([zr * cr - zi * ci, zr * ci + zi * cr], dim=2).view(feat.shape)
        return self.proj_out(self.attn(self.conv(feat)))


@register_op("spartan", dims=(1, 2))
class SpaRTANBlock(nn.Module):
    """SpaRTAN block: spatial mixer and wave channel mixer, each pre-normed, layer-scaled and
    residual. ``(B, C, L) -> (B, C, L)`` or ``(B, C, H, W) -> (B, C, H, W)``."""

    def __init__(
        self,
        channels: int,
        length: int | None = None,
        dims: int = 1,
        expand_ratio: int = 2,
        grouped: bool = True,
        layer_scale_init: float = 1e-5,
    ) -> None:
        super().__init__()
        if channels % 2:
            raise ValueError("spartan needs an even channel count (complex channel pairs)")
        self.norm1, self.norm2 = (
            nn.GroupNorm(1, channels, eps=1e-6),
            nn.GroupNorm(1, channels, eps=1e-6),
        )
        self.smixer = SpatialMixer(dims, channels, grouped)
        self.cmixer = WaveChannelMixer(dims, channels, expand_ratio, grouped)
        shape = (1, channels) + (1,) * dims
        self.scale1 = nn.Parameter(torch.full(shape, layer_scale_init))
        self.scale2 = nn.Parameter(torch.full(shape, layer_scale_init))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.scale1 * self.smixer(self.norm1(x))
        return x + self.scale2 * self.cmixer(self.norm2(x))
