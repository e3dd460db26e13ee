"""Dilated convolution with learnable spacings (DCLS; Khalfaoui-Hassani et al., ICLR 2023;
Gaussian interpolation as in "Learning Delays in Spiking Neural Networks using DCLS").

Each channel has ``m`` weights at learnable real-valued positions inside a window of
``K = dilated_kernel_size`` taps. The dense kernel is built by Gaussian interpolation::

    K[c, j] = sum_i w[c, i] * g_i(j) / sum_j' g_i(j'),   g_i(j) = exp(-(j - (p[c, i] + lim))^2 / (2 s^2))

with ``lim = K // 2`` and a learnable width ``s = |sigma| + sigma_min``; then an ordinary
("same") depthwise convolution. Positions live in ``[-lim, lim]``: the forward pass uses
clamped positions, and :meth:`DCLS.clamp_parameters` (or :func:`register_clamp_hook` on the
optimiser) writes the clamp back after each optimiser step, as the paper prescribes.
Learnable spacings suit irregular revisit gaps in satellite time series. 2-D uses separable
Gaussians in both axes (positions ``(2, C, m)``). Inference form
(:meth:`DCLS.reparameterize`): the kernel is built once and kept as a plain depthwise conv.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ._common import dw_conv
from .registry import register_op

__all__ = ["DCLS", "register_clamp_hook"]


@register_op("dcls", dims=(1, 2))
class DCLS(nn.Module):
    """Depthwise DCLS convolution with Gaussian interpolation and position clamping."""

    def __init__(
        self,
        channels: int,
        length: int | None = None,
        dims: int = 1,
        kernel_count: int | None = None,
        dilated_kernel_size: int | None = None,
        sigma_init: float = 0.5,
        sigma_min: float = 0.1,
        path: str = "auto",
    ) -> None:
        super().__init__()
        size = dilated_kernel_size or (13 if dims == 1 else 9)
        if size % 2 != 1:
            raise ValueError("dilated_kernel_size must be odd")
        m = kernel_count or (5 if dims == 1 else 9)
        self.dims, self.size, self.lim, self.path = dims, size, size // 2, path
        self.sigma_min = sigma_min
        self.weight = nn.Parameter(torch.empty(channels, m))
        nn.init.uniform_(self.weight, -1 / math.sqrt(m), 1 / math.sqrt(m))
        # initial positions: spread over the window like a dilated kernel, slightly jittered
        if dims == 1:
            base = torch.linspace(-self.lim, self.lim, m + 2)[1:-1].expand(channels, m)
            pos = base + 0.25 * torch.randn(channels, m)
        else:
            pos = (torch.rand(2, channels, m) * 2 - 1) * self.lim
        self.positions = nn.Parameter(pos.clamp(-self.lim, self.lim).clone())
        self.sigma = nn.Parameter(torch.full((dims, channels, m), sigma_init - sigma_min))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.dense_kernel: nn.Parameter | None = None

    @torch.no_grad()
    def clamp_parameters(self) -> None:
        """Clamp positions into the window (call after each optimiser step)."""
        if self.dense_kernel is None:
            self.positions.clamp_(-self.lim, self.lim)

    def _interp(self, pos: Tensor, sigma: Tensor) -> Tensor:
        """Normalised Gaussian weights ``(C, m, K)`` for positions ``(C, m)``."""
        grid = torch.arange(self.size, device=pos.device, dtype=pos.dtype)
        s = sigma.abs() + self.sigma_min
        g = torch.exp(-0.5 * ((grid - (pos + self.lim)[..., None]) / s[..., None]) ** 2)
        return g / (g.sum(-1, keepdim=True) + 1e-7)

    def kernel(self) -> Tensor:
        """Dense kernel ``(C, K)`` (or ``(C, K, K)``) from weights and clamped positions."""
        if self.dense_kernel is not None:
            return self.dense_kernel
        pos = self.positions.clamp(-self.lim, self.lim)
        if self.dims == 1:
            return torch.einsum("cm,cmk->ck", self.weight, self._interp(pos, self.sigma[0]))
        gy = self._interp(pos[0], self.sigma[0])
        gx = self._interp(pos[1], self.sigma[1])
        return torch.einsum("cm,cmy,cmx->cyx", self.weight, gy, gx)

    def orthogonality_kernels(self) -> list[Tensor]:
        """Depthwise kernels for :func:`agrostress.ops.orthogonality_loss`."""
        return [self.kernel()]

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Inference form: the interpolated kernel, built once, as a plain depthwise conv."""
        if self.dense_kernel is None:
            self.dense_kernel = nn.Parameter(self.kernel().detach().clone())
            del self.weight, self.positions, self.sigma

    deploy = reparameterize

    def forward(self, x: Tensor) -> Tensor:
        return dw_conv(x, self.kernel(), self.bias, path=self.path)


def register_clamp_hook(optimizer: torch.optim.Optimizer, model: nn.Module) -> object:
    """Clamp every DCLS module of ``model`` after each ``optimizer.step()``; returns the hook
    handle (``handle.remove()`` to detach)."""
    modules = [m for m in model.modules() if isinstance(m, DCLS)]

    def hook(*_: object) -> None:
        for m in modules:
            m.clamp_parameters()

    return optimizer.register_step_post_hook(hook)
