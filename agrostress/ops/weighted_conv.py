"""Weighted convolution (Cammarasana & Patane, "Optimal Weighted Convolution for
Classification and Denoising", 2025).

The kernel is multiplied by a spatial density ``Phi`` that weights neighbours by their
distance to the centre: ``alpha = [flip(d), 1, d]`` (``d`` ordered from the centre outwards)
and ``Phi = alpha`` in 1-D, ``Phi = alpha (x) alpha`` (outer product) in 2-D; the operator
keeps the parameter count of the plain convolution (plus the ``k // 2`` densities when they
are learnable). Depthwise here, "same" padding for any odd ``k``.

Inference form (:meth:`WeightedConv.reparameterize`): fold ``Phi`` into the weights, leaving
a plain depthwise convolution. The paper tunes ``d`` as a hyper-parameter; our default
learns it, starting from ``0.75`` per step away from the centre (our choice, not the
paper's).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ._common import dw_conv
from .registry import register_op

__all__ = ["WeightedConv"]


@register_op("weighted_conv", dims=(1, 2))
class WeightedConv(nn.Module):
    """Depthwise convolution with a (learnable or fixed) centre-distance density."""

    def __init__(
        self,
        channels: int,
        length: int | None = None,
        dims: int = 1,
        kernel_size: int = 5,
        density: tuple[float, ...] | None = None,
        learn_density: bool = True,
        path: str = "auto",
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1 or kernel_size < 3:
            raise ValueError("kernel_size must be odd and >= 3")
        half = kernel_size // 2
        d = torch.tensor(density if density is not None else [0.75**i for i in range(1, half + 1)])
        if d.numel() != half:
            raise ValueError(f"density needs {half} values")
        self.dims, self.path = dims, path
        self.density = nn.Parameter(d.float(), requires_grad=learn_density)
        self.weight = nn.Parameter(torch.empty(channels, *((kernel_size,) * dims)))
        bound = 1 / math.sqrt(kernel_size**dims)
        nn.init.uniform_(self.weight, -bound, bound)
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("folded", torch.tensor(False))  # saved with the weights

    def phi(self) -> Tensor:
        """The density ``Phi`` (``(k,)`` or ``(k, k)``)."""
        d = self.density
        alpha = torch.cat([d.flip(0), d.new_ones(1), d])
        return alpha if self.dims == 1 else torch.outer(alpha, alpha)

    def kernel(self) -> Tensor:
        """Effective kernel ``W * Phi``."""
        return self.weight if bool(self.folded) else self.weight * self.phi()

    def orthogonality_kernels(self) -> list[Tensor]:
        """Depthwise kernels for :func:`agrostress.ops.orthogonality_loss`."""
        return [self.kernel()]

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Fold ``Phi`` into the weights (inference form: a plain depthwise conv)."""
        if not bool(self.folded):
            self.weight.copy_(self.weight * self.phi())
            self.folded.fill_(True)
            self.density.requires_grad_(False)

    deploy = reparameterize

    def forward(self, x: Tensor) -> Tensor:
        return dw_conv(x, self.kernel(), self.bias, path=self.path)
