"""Adaptive frequency filter token mixer (AFFNet; Huang et al., "Adaptive Frequency Filters
As Efficient Global Token Mixers", ICCV 2023).

``X = rFFT(x)``; a block-diagonal complex-valued two-layer MLP over channels (shared by all
frequencies, ReLU on real and imaginary parts after the first layer) predicts a mask,
sparsified with ``softshrink(lambda = 0.01)``; ``y = irFFT(mask * X) + x``. Mathematically
a global depthwise convolution whose kernel depends on the input.

The transform is circular (the last date wraps to the first) unless ``padding="linear"``,
which zero-pads to ``2L`` before the transform and crops after it. 1-D runs on the dense
(DFT-matrix) or fft path like :mod:`agrostress.ops.fourier`; 2-D uses ``torch.fft.rfft2``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._common import fft_ready, irfft_real, resolve_path, rfft_real
from .registry import register_op

__all__ = ["AdaptiveFrequencyFilter"]


def _complex_block_matrix(w: Tensor) -> Tensor:
    """``w (2, nb, i, o)`` (real, imag) -> real block matrices ``(nb, 2o, 2i)`` acting on
    ``(channel, re/im)``-interleaved vectors as complex multiplication by ``w``."""
    wr, wi = w[0].transpose(1, 2), w[1].transpose(1, 2)  # (nb, o, i)
    top = torch.stack([wr, -wi], dim=-1)  # re_out from (re_in, im_in)
    bot = torch.stack([wi, wr], dim=-1)  # im_out
    nb, o, i = wr.shape
    return torch.stack([top, bot], dim=2).reshape(nb, 2 * o, 2 * i)


@register_op("aff", dims=(1, 2))
class AdaptiveFrequencyFilter(nn.Module):
    """AFF token mixer (AFNO-style block-diagonal complex MLP, channels-first)."""

    def __init__(
        self,
        channels: int,
        length: int | None = None,
        dims: int = 1,
        num_blocks: int | None = None,
        hidden_factor: int = 1,
        sparsity_threshold: float = 0.01,
        padding: str = "circular",
        path: str = "auto",
    ) -> None:
        super().__init__()
        nb = num_blocks or next(n for n in (8, 4, 2, 1) if channels % n == 0)
        if channels % nb:
            raise ValueError("channels must be divisible by num_blocks")
        if padding not in ("circular", "linear"):
            raise ValueError("padding must be 'circular' or 'linear'")
        bs, hid = channels // nb, channels // nb * hidden_factor
        self.dims, self.nb, self.bs, self.hid = dims, nb, bs, hid
        self.lam, self.padding, self.path = sparsity_threshold, padding, path
        scale = 0.02
        self.w1 = nn.Parameter(scale * torch.randn(2, nb, bs, hid))
        self.b1 = nn.Parameter(scale * torch.randn(2, nb, hid))
        self.w2 = nn.Parameter(scale * torch.randn(2, nb, hid, bs))
        self.b2 = nn.Parameter(scale * torch.randn(2, nb, bs))

    def n_fft(self, n: int) -> int:
        return 2 * n if self.padding == "linear" else n

    def mask(self, z: Tensor) -> Tensor:
        """Complex mask for spectra ``z (B, C, 2, S)`` (re/im at dim 2), same layout."""
        bsz, c, _, s = z.shape
        h = z.reshape(bsz, self.nb, 2 * self.bs, s)  # rows (channel, re/im) per block
        b1 = self.b1.permute(1, 2, 0).reshape(self.nb, 2 * self.hid, 1)
        b2 = self.b2.permute(1, 2, 0).reshape(self.nb, 2 * self.bs, 1)
        h = F.relu(torch.matmul(_complex_block_matrix(self.w1), h) + b1)
        h = torch.matmul(_complex_block_matrix(self.w2), h) + b2
        h = F.softshrink(h, self.lam)
        return h.view(bsz, c, 2, s)

    def _filter(self, z: Tensor) -> Tensor:
        m = self.mask(z)
        zr, zi, mr, mi = z[:, :, 0], z[:, :, 1], m[:, :, 0], m[:, :, 1]
        return torch.stack([zr * mr - zi * mi, zr * mi + zi * mr], dim=2)

    def forward(self, x: Tensor) -> Tensor:
        if self.dims == 1:
            length = x.shape[-1]
            n = self.n_fft(length)
            path = resolve_path(self.path, length, x.device, kind="dft")
            if path == "direct":
                raise ValueError("path must be 'auto', 'dense' or 'fft'")
            y = irfft_real(self._filter(rfft_real(x, n, path)), length, n, path)
            return y + x
        hh, ww = x.shape[-2:]
        sizes = (self.n_fft(hh), self.n_fft(ww))
        zc = torch.fft.rfft2(fft_ready(x), s=sizes, norm="ortho")
        z = torch.stack((zc.real, zc.imag), dim=2)  # (B, C, 2, H, Wf)
        yz = self._filter(z.flatten(3)).view(z.shape)
        y = torch.fft.irfft2(torch.complex(yz[:, :, 0], yz[:, :, 1]), s=sizes, norm="ortho")
        return y[..., :hh, :ww].to(x.dtype) + x
