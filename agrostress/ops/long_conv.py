"""Long convolution with smooth kernels (Fu et al., "Simple Hardware-Efficient Long
Convolutions for Sequence Modeling", ICML 2023).

A full-length learned depthwise kernel per channel, initialised small (``randn * 0.002``),
regularised in the forward pass by optionally *smoothing* with a 7-tap average pool and
then *squashing*, ``k <- relu(|k| - lam) * sign(k)`` (the reference's order); ``y = conv(u, k) + D * u``, then GELU and
a pointwise output linear (``mix=False`` returns the convolution part only). The paper
trains the kernels with a lower learning rate and no weight decay: kernel parameters carry
``_optim = {"lr": kernel_lr, "weight_decay": 0}`` (see ``optim_param_groups``).

Default ``lam = 0.001``: with the ``0.002`` initial scale, ``lam = 0.003`` would zero about
87 % of the taps at initialisation, and a squashed-to-zero tap gets exactly zero gradient.
FlashButterfly / FFT tricks pay only at long ``L``; at ``L`` of a few dozen the dense
Toeplitz matmul is the fast path.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._common import causal_to_corr, fit_length, long_conv1d, pointwise, set_optim
from .registry import register_op

__all__ = ["LongConv"]


@register_op("long_conv", dims=(1,), needs_length=True)
class LongConv(nn.Module):
    """Long convolution with squash/smooth kernel regularisation for ``(B, C, L)``."""

    def __init__(
        self,
        channels: int,
        length: int,
        dims: int = 1,
        lam: float = 0.001,
        smooth: bool = True,
        smooth_kernel: int = 7,
        init_scale: float = 0.002,
        bidirectional: bool = False,
        mix: bool = True,
        kernel_lr: float = 1e-3,
        path: str = "auto",
    ) -> None:
        super().__init__()
        if dims != 1:
            raise ValueError("long_conv is 1-D")
        self.channels, self.length, self.path = channels, length, path
        self.lam, self.smooth, self.smooth_kernel = lam, smooth, smooth_kernel
        self.bidirectional, self.mix = bidirectional, mix
        nk = 2 if bidirectional else 1
        self.kernel_param = set_optim(
            nn.Parameter(torch.randn(nk * channels, length) * init_scale),
            lr=kernel_lr,
            weight_decay=0.0,
        )
        self.D = nn.Parameter(torch.randn(channels))
        if mix:
            self.w_out = nn.Parameter(torch.empty(channels, channels))
            nn.init.kaiming_uniform_(self.w_out, a=math.sqrt(5))
            self.b_out = nn.Parameter(torch.zeros(channels))

    def causal_kernels(self, length: int) -> Tensor:
        """Smoothed (optionally), then squashed kernel(s) ``(nk*C, length)`` — the order of
        the reference (safari's ``LongConvKernel``: moving-average smoothing, then
        ``relu(|k| - lam) * sign(k)``), so the squash sets the final sparsity."""
        k = self.kernel_param
        if self.smooth:
            p = self.smooth_kernel // 2
            k = F.avg_pool1d(
                k[:, None], self.smooth_kernel, stride=1, padding=p, count_include_pad=False
            )[:, 0]
        k = F.relu(k.abs() - self.lam) * k.sign()
        return fit_length(k, length)

    def kernel(self, length: int | None = None) -> tuple[Tensor, int]:
        """Materialised cross-correlation kernel and ``pad_left`` (``F.conv1d`` convention)."""
        k = self.causal_kernels(length or self.length)
        c = self.channels
        return causal_to_corr(k[:c], k[c:] if self.bidirectional else None)

    def output(self, y: Tensor) -> Tensor:
        """What follows the convolution: GELU and the pointwise output linear."""
        return pointwise(F.gelu(y), self.w_out, self.b_out) if self.mix else y

    def forward(self, x: Tensor) -> Tensor:
        w, pad = self.kernel(x.shape[-1])
        return self.output(long_conv1d(x, w, pad, self.path) + self.D[:, None] * x)
