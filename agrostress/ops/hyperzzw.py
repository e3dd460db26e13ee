"""HyperZ.Z.W hyper-kernel convolution (after Zhang, "HyperZ.Z.W Operator Connects Slow-Fast
Networks for Full Context Interaction", 2024; the "Terminator" architecture).

A coordinate-based implicit MLP with sinusoidal activations (the *slow net*) maps
positions in ``[-1, 1]`` to a global hyper-kernel ``W (C, L)`` (``(C, H, W)`` in 2-D). The
*fast* path makes it context dependent by elementwise multiplication with the activations,
``K_b = Z_b * W``, and convolves the activations with it::

    h_b = conv_same(Z_b, K_b) / L          (depthwise, centred, zero padding)
    out = W_out GELU(LN(h)) + b_out          (LN over channels, per sample)

The upstream code is gone and used batch statistics at inference; here the only norm is a
per-sample LayerNorm, so the output never depends on the batch. The per-sample convolution
runs through spectra (zero-padded to ``2L``, linear not circular): on the dense path with
cached DFT matrices, on the fft path with ``torch.fft`` (2-D: fft only). Inference form
(:meth:`HyperZZW.reparameterize`): the slow net's kernel for the configured size is cached,
so inference skips the MLP.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._common import LayerNormCF, pointwise, rdft_matrices, resolve_path
from .registry import register_op

__all__ = ["HyperZZW", "hyper_conv1d"]


@functools.lru_cache(maxsize=64)
def _corr_mats(
    length: int, device: torch.device, dtype: torch.dtype
) -> tuple[Tensor, Tensor, Tensor, int]:
    """DFT matrices for the centred cross-correlation of two length-``L`` sequences."""
    n = 2 * length
    fwd, _ = rdft_matrices(length, n, device, dtype)  # (L, 2F)
    _, inv_full = rdft_matrices(n, n, device, dtype)  # (2F, n)
    pad = (length - 1) // 2
    start = length - 1 - pad
    # ortho-normalised transforms: irfft(rfft(a) * rfft(b)) = (a (*) b) / sqrt(n)
    inv = inv_full[:, start : start + length] * math.sqrt(n)
    return fwd, fwd.flip(0).contiguous(), inv.contiguous(), n


def hyper_conv1d(z: Tensor, k: Tensor, path: str = "auto") -> Tensor:
    """Centred per-sample depthwise cross-correlation ``y[b,c,t] = sum_j k[b,c,j] *
    z[b,c,t + j - (L-1)//2]`` with zero padding; ``z, k`` of shape ``(B, C, L)``."""
    length = z.shape[-1]
    path = resolve_path(path, length, z.device, kind="dft")
    if path == "dense":
        fwd, fwd_flip, inv, n = _corr_mats(length, z.device, z.dtype)
        nf = n // 2 + 1
        zf = (z @ fwd).unflatten(-1, (2, nf))
        kf = (k @ fwd_flip).unflatten(-1, (2, nf))  # spectrum of the flipped kernel
        zr, zi, kr, ki = zf[..., 0, :], zf[..., 1, :], kf[..., 0, :], kf[..., 1, :]
        prod = torch.cat([zr * kr - zi * ki, zr * ki + zi * kr], dim=-1)
        return prod @ inv
    n = 2 * length
    start = length - 1 - (length - 1) // 2
    full = torch.fft.irfft(torch.fft.rfft(z, n=n) * torch.fft.rfft(k.flip(-1), n=n), n=n)
    return full[..., start : start + length]


def _hyper_conv2d(z: Tensor, k: Tensor) -> Tensor:
    hh, ww = z.shape[-2:]
    sizes = (2 * hh, 2 * ww)
    full = torch.fft.irfft2(
        torch.fft.rfft2(z, s=sizes) * torch.fft.rfft2(k.flip(-2, -1), s=sizes), s=sizes
    )
    sy, sx = hh - 1 - (hh - 1) // 2, ww - 1 - (ww - 1) // 2
    return full[..., sy : sy + hh, sx : sx + ww]


class _Sine(nn.Module):
    def __init__(self, omega: float) -> None:
        super().__init__()
        self.omega = omega

    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(self.omega * x)


@register_op("hyperzzw", dims=(1, 2), needs_length=True)
class HyperZZW(nn.Module):
    """Hyper-kernel (slow net) x activation (fast net) global convolution, batch-independent."""

    def __init__(
        self,
        channels: int,
        length: int | tuple[int, int],
        dims: int = 1,
        hidden: int = 32,
        omega0: float = 10.0,
        path: str = "auto",
    ) -> None:
        super().__init__()
        self.dims, self.path = dims, path
        self.size: tuple[int, ...] = (length,) if isinstance(length, int) else tuple(length)
        if dims == 2 and len(self.size) == 1:
            self.size = (self.size[0], self.size[0])
        layers = [
            nn.Linear(dims, hidden),
            _Sine(omega0),
            nn.Linear(hidden, hidden),
            _Sine(1.0),
            nn.Linear(hidden, channels),
        ]
        self.slow = nn.Sequential(*layers)
        with torch.no_grad():  # SIREN initialisation
            first, mid = layers[0], layers[2]
            assert isinstance(first, nn.Linear) and isinstance(mid, nn.Linear)
            first.weight.uniform_(-1 / dims, 1 / dims)
            bound = math.sqrt(6 / hidden)
            mid.weight.uniform_(-bound, bound)
        self.norm = LayerNormCF(channels)
        self.w_out = nn.Parameter(torch.empty(channels, channels))
        nn.init.kaiming_uniform_(self.w_out, a=math.sqrt(5))
        self.b_out = nn.Parameter(torch.zeros(channels))
        # the inference form's kernel: derived from the slow net, so not part of the state dict
        self.register_buffer("cached_kernel", None, persistent=False)

    def train(self, mode: bool = True) -> HyperZZW:
        """Back to training drops the cached kernel: the slow net learns again."""
        if mode:
            self.cached_kernel = None
        return super().train(mode)

    def hyper_kernel(self, size: tuple[int, ...]) -> Tensor:
        """Slow-net kernel ``(C, *size)`` evaluated on a uniform grid over ``[-1, 1]`` (the
        cached one in eval mode after :meth:`reparameterize`)."""
        if (not self.training and self.cached_kernel is not None
                and tuple(self.cached_kernel.shape[1:]) == size):
            return self.cached_kernel
        ref = self.w_out
        axes = [torch.linspace(-1, 1, n, device=ref.device, dtype=ref.dtype) for n in size]
        coords = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, self.dims)
        return self.slow(coords).T.reshape(-1, *size)

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Cache the hyper-kernel for the configured size (inference skips the slow net)."""
        self.cached_kernel = None
        self.cached_kernel = self.hyper_kernel(self.size).detach().clone()  # buffer

    deploy = reparameterize

    def context_kernel(self, z: Tensor) -> Tensor:
        """``K = Z * W`` (per sample)."""
        return z * self.hyper_kernel(tuple(z.shape[2:]))

    def output(self, h: Tensor) -> Tensor:
        return pointwise(F.gelu(self.norm(h)), self.w_out, self.b_out)

    def forward(self, z: Tensor) -> Tensor:
        k = self.context_kernel(z)
        n = math.prod(z.shape[2:])
        h = hyper_conv1d(z, k, self.path) if self.dims == 1 else _hyper_conv2d(z, k)
        return self.output(h / n)
