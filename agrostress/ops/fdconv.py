"""Frequency dynamic convolution (FDConv; Chen et al., "Frequency Dynamic Convolution for
Dense Image Prediction", CVPR 2025). 2-D only.

* **Fourier-disjoint weights.** The ``C x C x k x k`` kernel is stored as the rFFT2 of its
  ``(C k) x (C k)`` unfolding; the frequency bins, sorted by radius, are split into
  ``kernel_num`` disjoint groups. Each group, transformed back, is one spatial kernel
  ``K_g``; a sample's kernel is ``sum_g a_g(x) K_g`` (the inverse FFT is linear, so the
  ``K_g`` are computed once per forward, not per sample).
* **Kernel spatial modulation (KSM).** Global: pooled features -> channel, filter, spatial
  and kernel attentions. Local: an ECA-style 1-D conv across channels gives a dense
  ``C_out x C_in x k x k`` modulation per sample.
* **Frequency band modulation (FBM).** The input is split by rFFT2 masks into frequency
  bands (``k_list = (2, 4, 8)``), each high band scaled by a spatial sigmoid map.

Per-sample kernels cost ``B * C^2 * k^2`` memory and run as one grouped convolution.

Deviations, stated plainly:

* **Channels <= 16.** The official code silently becomes a plain ``nn.Conv2d`` when
  ``min(C_in, C_out) <= 16`` (``use_fdconv_if_c_gt=16``). Here the full dynamic operator
  runs at any channel count. Pass ``plain_conv_max_channels=16`` to reproduce the official
  behaviour; construction then emits a ``UserWarning`` and ``self.dynamic`` is ``False``.
* The global attention's BatchNorm on pooled ``1 x 1`` features is replaced by LayerNorm
  (no batch statistics; works with batch size 1).
* The filter-attention FC is initialised near zero like the other attention FCs, so at
  initialisation the operator equals its base convolution.
"""

from __future__ import annotations

import functools
import math
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._common import fft_ready
from .registry import register_op

__all__ = ["FDConv"]


@functools.lru_cache(maxsize=64)
def _band_masks(h: int, w: int, k_list: tuple[int, ...], device: torch.device) -> Tensor:
    """Low-pass rFFT2 masks ``(len(k_list), h, w // 2 + 1)``: ``max(|f_y|, |f_x|) < 0.5 / k``."""
    fy = torch.fft.fftfreq(h, device=device).abs()[:, None]
    fx = torch.fft.rfftfreq(w, device=device).abs()[None, :]
    f = torch.maximum(fy, fx)
    return torch.stack([(f < 0.5 / k + 1e-8).float() for k in k_list])


class _StarReLU(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        return self.scale * F.relu(x) ** 2 + self.bias


@register_op("fdconv", dims=(2,))
class FDConv(nn.Module):
    """FDConv ``C -> C``, ``k x k``, "same" padding, with bias."""

    def __init__(
        self,
        channels: int,
        length: int | tuple[int, int] | None = None,
        dims: int = 2,
        kernel_size: int = 3,
        kernel_num: int = 4,
        reduction: float = 0.0625,
        min_att_channels: int = 16,
        att_multi: float = 2.0,
        kernel_temp: float = 1.0,
        k_list: tuple[int, ...] = (2, 4, 8),
        use_ksm_local: bool = True,
        use_fbm: bool = True,
        plain_conv_max_channels: int | None = None,
    ) -> None:
        super().__init__()
        if dims != 2:
            raise ValueError("fdconv is 2-D")
        c, k = channels, kernel_size
        self.channels, self.k, self.kernel_num = c, k, kernel_num
        self.att_multi, self.kernel_temp, self.k_list = att_multi, kernel_temp, tuple(k_list)
        base = nn.Conv2d(c, c, k, padding=k // 2)
        self.bias = nn.Parameter(base.bias.detach().clone())  # type: ignore[union-attr]
        self.dynamic = plain_conv_max_channels is None or c > plain_conv_max_channels
        if not self.dynamic:
            warnings.warn(
                f"FDConv with {c} channels <= {plain_conv_max_channels}: running as a plain "
                "convolution (official FDConv behaviour), no frequency dynamics",
                UserWarning,
                stacklevel=2,
            )
            self.weight = nn.Parameter(base.weight.detach().clone())
            return
        # Fourier-domain parameters and their disjoint frequency groups
        self.scale = max(1, c // 2)
        wm = base.weight.detach().permute(0, 2, 1, 3).reshape(c * k, c * k)
        wf = torch.fft.rfft2(wm)
        self.dft_weight = nn.Parameter(torch.stack([wf.real, wf.imag], -1) / self.scale)
        fy = torch.fft.fftfreq(c * k)[:, None]
        fx = torch.fft.rfftfreq(c * k)[None, :]
        order = torch.argsort(torch.sqrt(fy**2 + fx**2).flatten(), stable=True)
        group = torch.empty_like(order)
        for g, idx in enumerate(torch.tensor_split(order, kernel_num)):
            group[idx] = g
        self.register_buffer(
            "group_masks",
            torch.stack([(group == g).view(c * k, -1).float() for g in range(kernel_num)]),
            persistent=False,
        )
        # KSM global
        att = max(int(c * reduction), min_att_channels)
        self.fc = nn.Linear(c, att, bias=False)
        self.norm = nn.LayerNorm(att)
        self.act = _StarReLU()
        self.fc_channel = nn.Linear(att, c)
        self.fc_filter = nn.Linear(att, c)
        self.fc_spatial = nn.Linear(att, k * k)
        self.fc_kernel = nn.Linear(att, kernel_num)
        nn.init.kaiming_normal_(self.fc.weight, mode="fan_out", nonlinearity="relu")
        for fc in (self.fc_channel, self.fc_filter, self.fc_spatial, self.fc_kernel):
            nn.init.normal_(fc.weight, std=1e-6)
            nn.init.zeros_(fc.bias)
        # KSM local (ECA-style conv across channels)
        self.use_ksm_local = use_ksm_local
        if use_ksm_local:
            k_eca = round(math.log2(c) / 2 + 0.5) // 2 * 2 + 1
            self.local_norm = nn.LayerNorm(c)
            self.local_conv = nn.Conv1d(1, c * k * k, k_eca, padding=k_eca // 2, bias=False)
            nn.init.constant_(self.local_conv.weight, 1e-6)
        # FBM
        self.use_fbm = use_fbm and k == 3
        if self.use_fbm:
            self.fbm_convs = nn.ModuleList(nn.Conv2d(c, 1, 3, padding=1) for _ in self.k_list)
            for conv in self.fbm_convs:
                nn.init.normal_(conv.weight, std=1e-6)
                nn.init.zeros_(conv.bias)

    def group_kernels(self) -> Tensor:
        """The ``kernel_num`` spatial kernels ``(G, C_out, C_in, k, k)`` (already scaled by
        ``alpha = C/2 * kernel_num`` as in the official code)."""
        c, k = self.channels, self.k
        w = self.dft_weight[None] * self.group_masks[..., None]  # (G, Ck, Ck/2+1, 2)
        sp = torch.fft.irfft2(torch.view_as_complex(w.contiguous()), s=(c * k, c * k))
        sp = sp * (self.scale * self.kernel_num)
        return sp.view(-1, c, k, c, k).permute(0, 1, 3, 2, 4)

    def fbm(self, x: Tensor) -> Tensor:
        """Frequency band modulation (identity at initialisation)."""
        h, w = x.shape[-2:]
        xf = torch.fft.rfft2(fft_ready(x), norm="ortho")
        masks = _band_masks(h, w, self.k_list, x.device)
        pre, out = x, 0
        for i, conv in enumerate(self.fbm_convs):
            low = torch.fft.irfft2(xf * masks[i], s=(h, w), norm="ortho").to(x.dtype)
            out = out + torch.sigmoid(conv(x)) * 2 * (pre - low)
            pre = low
        return out + pre

    def sample_kernels(self, x: Tensor) -> Tensor:
        """Per-sample kernels ``(B, C_out, C_in, k, k)``."""
        c, k = self.channels, self.k
        pooled = x.mean(dim=(-2, -1))  # (B, C)
        a = self.act(self.norm(self.fc(pooled)))
        m = self.att_multi
        ch = torch.sigmoid(self.fc_channel(a)) * m  # (B, C_in)
        fi = torch.sigmoid(self.fc_filter(a)) * m  # (B, C_out)
        sp = torch.sigmoid(self.fc_spatial(a)).view(-1, 1, 1, k, k) * m
        ka = torch.sigmoid(self.fc_kernel(a) / self.kernel_temp) * 2 / self.kernel_num
        wts = torch.einsum("bg,goiyx->boiyx", ka, self.group_kernels())
        wts = wts * sp * ch[:, None, :, None, None] * fi[:, :, None, None, None]
        if self.use_ksm_local:
            loc = self.local_conv(self.local_norm(pooled)[:, None])  # (B, C_out k k, C_in)
            loc = loc.view(-1, c, k, k, c).permute(0, 1, 4, 2, 3)
            wts = wts * torch.sigmoid(loc) * m
        return wts

    def forward(self, x: Tensor) -> Tensor:
        if not self.dynamic:
            return F.conv2d(x, self.weight, self.bias, padding=self.k // 2)
        bsz, c, h, w = x.shape
        wts = self.sample_kernels(x)
        xin = self.fbm(x) if self.use_fbm else x
        y = F.conv2d(
            xin.reshape(1, bsz * c, h, w),
            wts.reshape(bsz * c, c, self.k, self.k),
            padding=self.k // 2,
            groups=bsz,
        )
        return y.view(bsz, c, h, w) + self.bias[:, None, None]
