"""Structured global convolution (SGConv; Li et al., "What Makes Convolutional Models Great
on Long Sequence Modeling?", ICLR 2023).

The full-length depthwise kernel is the concatenation of ``S`` sub-kernels, each a small
learnable kernel of ``d`` taps linearly upsampled by ``2**max(0, i-1)`` and scaled by
``decay**(S-i-1)`` (farther parts get smaller weights), so parameters grow as
``d * log2(L / d)``. The kernel is divided by its per-channel norm measured at
initialisation; that norm is a persistent buffer fixed in ``__init__`` (so it is the same
in every checkpoint). ``y = conv(u, k) + D * u``, then GELU and a pointwise output linear
(the GConv layer; ``mix=False`` returns the convolution part only).

With ``L <= 64`` a ``d = 64`` kernel collapses to a single scale: the default ``d = 8``
gives 2-4 scales at ``L = 12..40``. Causal by default (``bidirectional=True`` adds an
anti-causal kernel). Kernel parameters carry ``_optim = {"lr": kernel_lr, "weight_decay": 0}``
(see :func:`agrostress.ops._common.optim_param_groups`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._common import causal_to_corr, fit_length, long_conv1d, pointwise, set_optim
from .registry import register_op

__all__ = ["SGConv"]


@register_op("sgconv", dims=(1,), needs_length=True)
class SGConv(nn.Module):
    """SGConv token mixer for ``(B, C, L)``."""

    def __init__(
        self,
        channels: int,
        length: int,
        dims: int = 1,
        kernel_dim: int = 8,
        n_scales: int | None = None,
        decay_min: float = 2.0,
        decay_max: float = 2.0,
        bidirectional: bool = False,
        mix: bool = True,
        kernel_lr: float = 1e-3,
        path: str = "auto",
    ) -> None:
        super().__init__()
        if dims != 1:
            raise ValueError("sgconv is 1-D")
        self.channels, self.length, self.path = channels, length, path
        self.bidirectional, self.mix = bidirectional, mix
        self.n_scales = n_scales or max(1, 1 + math.ceil(math.log2(max(length, 1) / kernel_dim)))
        nk = 2 if bidirectional else 1
        self.kernels = nn.ParameterList(
            set_optim(
                nn.Parameter(torch.randn(nk * channels, kernel_dim)), lr=kernel_lr, weight_decay=0.0
            )
            for _ in range(self.n_scales)
        )
        mult = torch.linspace(decay_min, decay_max, channels).repeat(nk)
        self.register_buffer("multiplier", mult[:, None])
        self.D = nn.Parameter(torch.randn(channels))
        with torch.no_grad():
            self.register_buffer("kernel_norm", self._raw_kernel().norm(dim=-1, keepdim=True))
        if mix:
            self.w_out = nn.Parameter(torch.empty(channels, channels))
            nn.init.kaiming_uniform_(self.w_out, a=math.sqrt(5))
            self.b_out = nn.Parameter(torch.zeros(channels))

    def _raw_kernel(self) -> Tensor:
        """Unnormalised multi-scale kernel ``(nk*C, d * 2**(S-1))``."""
        parts = []
        s = self.n_scales
        for i, kp in enumerate(self.kernels):
            k = kp * self.multiplier ** (s - i - 1)
            factor = 2 ** max(0, i - 1)
            if factor > 1:
                k = F.interpolate(k[None], scale_factor=factor, mode="linear")[0]
            parts.append(k)
        return torch.cat(parts, dim=-1)

    def causal_kernels(self, length: int) -> Tensor:
        """The normalised kernel(s) ``(nk*C, length)`` (causal tap ``j`` at index ``j``)."""
        return fit_length(self._raw_kernel() / self.kernel_norm, length)

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
        y = long_conv1d(x, w, pad, self.path) + self.D[:, None] * x
        return self.output(y)
