"""Spatio-temporal variant: a per-pixel temporal encoder, then a light 2-D head over the
pixel's neighbourhood built from a 2-D operator of ``agrostress.ops``.

Yellow rust is patchy and nitrogen deficiency field-uniform, so the spatial texture of the
per-pixel evidence carries information a pixel model cannot see. Training uses patches
``(B, T, F, P, P)`` (P = 2·context + 1) and classifies the centre pixel; whole images run
convolutionally with :meth:`SpatioTemporal.forward_image`. The norm in the spatial head is
per pixel (over channels), and the default spatial operator is a depthwise (2·context+1)²
convolution, so the centre pixel sees exactly its patch and both paths agree; with another
``spatial_op`` they agree only while its receptive field stays within ``context``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from agrostress.models.base import StressModel
from agrostress.models.registry import register_model
from agrostress.models.temporal import MixerNet
from agrostress.ops import create_op
from agrostress.ops._common import LayerNormCF


@register_model("spatiotemporal")
class SpatioTemporal(StressModel):
    """Temporal MixerNet encoder per pixel → [x + op2d(norm x)] × depth → centre → classes."""

    def __init__(self, n_features: int, n_steps: int, n_classes: int = 3, context: int = 2,
                 temporal_op: str = "fourier", spatial_op: str = "dwconv", channels: int = 32,
                 temporal_depth: int = 2, spatial_depth: int = 1, dropout: float = 0.1):
        super().__init__()
        self.context = context
        self.encoder = MixerNet(n_features, n_steps, n_classes, op=temporal_op,
                                channels=channels, depth=temporal_depth, dropout=dropout)
        self.encoder.head = nn.Identity()
        self.norms = nn.ModuleList(LayerNormCF(channels) for _ in range(spatial_depth))
        op_kw = {"kernel_size": 2 * context + 1} if spatial_op == "dwconv" else {}
        self.mixers = nn.ModuleList(create_op(spatial_op, channels=channels, dims=2, **op_kw)
                                    for _ in range(spatial_depth))
        self.head = nn.Sequential(nn.Conv2d(2 * channels, channels, 1), nn.GELU(),
                                  nn.Conv2d(channels, n_classes, 1))

    def _embed(self, x: Tensor) -> Tensor:
        """(B, T, F, H, W) → (B, C, H, W) per-pixel temporal embeddings."""
        b, t, f, h, w = x.shape
        pix = x.permute(0, 3, 4, 1, 2).reshape(b * h * w, t, f)
        e = self.encoder.features(pix)
        return e.view(b, h, w, -1).permute(0, 3, 1, 2)

    def _spatial(self, e: Tensor) -> Tensor:
        s = e
        for norm, mix in zip(self.norms, self.mixers, strict=True):
            s = s + mix(norm(s))
        return self.head(torch.cat([e, s], dim=1))

    def forward(self, x: Tensor) -> Tensor:
        """Patches (B, T, F, P, P) → logits of the centre pixel (B, n_classes)."""
        out = self._spatial(self._embed(x))
        c = x.shape[-1] // 2
        return out[:, :, c, c]

    def forward_image(self, x: Tensor, pixel_batch: int = 16384) -> Tensor:
        """A whole image (1, T, F, H, W) → logits (1, n_classes, H, W)."""
        _, t, f, h, w = x.shape
        pix = x[0].permute(2, 3, 0, 1).reshape(h * w, t, f)
        e = torch.cat([self.encoder.features(pix[i : i + pixel_batch])
                       for i in range(0, h * w, pixel_batch)])
        e = e.view(h, w, -1).permute(2, 0, 1)[None]
        return self._spatial(e)
