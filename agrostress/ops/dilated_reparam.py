"""Dilated re-parameterisation block (UniRepLKNet, Ding et al., CVPR 2024).

Training form: ``BN(DW_K(x)) + sum_i BN_i(DW_{k_i, dilation r_i}(x))`` with the
UniRepLKNet kernel/dilation table (e.g. ``K=13 -> k=[5,7,3,3,3], r=[1,2,3,4,5]``,
``K=7 -> k=[5,3,3], r=[1,2,3]``).

Inference form (:meth:`DilatedReparam.reparameterize`, the paper's exact merge): fold each BN
into its conv (``w * gamma / sigma``, ``beta - mu * gamma / sigma``), turn every dilated small
kernel into a non-dilated one by inserting ``r - 1`` zeros between taps, zero-pad it centred
to ``K`` and sum all kernels and biases into one ``K``-tap depthwise conv. In eval mode the
un-merged block already runs this merged conv (computed on the fly), so merged and
un-merged agree to rounding.

In training the branches share one pass: all branch kernels are materialised as Toeplitz
matrices and applied with one batched matmul, followed by one BatchNorm over the
``C x branches`` channels (the per-branch BNs stacked; identical statistics).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._common import apply_toeplitz, dw_conv, resolve_path, toeplitz
from .registry import register_op

__all__ = ["DilatedReparam", "UNIREPLKNET_BRANCHES", "dilate_kernel"]

#: UniRepLKNet's (kernel sizes, dilations) of the parallel branches per large kernel size.
UNIREPLKNET_BRANCHES: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {
    17: ((5, 9, 3, 3, 3), (1, 2, 4, 5, 7)),
    15: ((5, 7, 3, 3, 3), (1, 2, 3, 5, 7)),
    13: ((5, 7, 3, 3, 3), (1, 2, 3, 4, 5)),
    11: ((5, 5, 3, 3, 3), (1, 2, 3, 4, 5)),
    9: ((5, 5, 3, 3), (1, 2, 3, 4)),
    7: ((5, 3, 3), (1, 2, 3)),
    5: ((3, 3), (1, 2)),
}


def dilate_kernel(w: Tensor, dilation: int, dims: int) -> Tensor:
    """Insert ``dilation - 1`` zeros between the taps of the last ``dims`` axes."""
    if dilation == 1:
        return w
    k = w.shape[-1]
    size = dilation * (k - 1) + 1
    out = w.new_zeros(*w.shape[:-dims], *((size,) * dims))
    idx = (slice(None),) * (w.dim() - dims) + (slice(None, None, dilation),) * dims
    out[idx] = w
    return out


def _center_pad(w: Tensor, size: int, dims: int) -> Tensor:
    pad = (size - w.shape[-1]) // 2
    return F.pad(w, (pad, pad) * dims)


@register_op("dilated_reparam", dims=(1, 2))
class DilatedReparam(nn.Module):
    """UniRepLKNet dilated re-param block (depthwise, "same" padding)."""

    def __init__(
        self,
        channels: int,
        length: int | None = None,
        dims: int = 1,
        kernel_size: int = 13,
        path: str = "auto",
    ) -> None:
        super().__init__()
        if kernel_size not in UNIREPLKNET_BRANCHES:
            raise ValueError(f"kernel_size must be one of {sorted(UNIREPLKNET_BRANCHES)}")
        ks, rs = UNIREPLKNET_BRANCHES[kernel_size]
        self.channels, self.dims, self.kernel_size, self.path = channels, dims, kernel_size, path
        self.branches: tuple[tuple[int, int], ...] = ((kernel_size, 1), *zip(ks, rs, strict=True))
        self.weights = nn.ParameterList()
        for k, _ in self.branches:
            w = torch.empty(channels, *((k,) * dims))
            nn.init.uniform_(w, -1 / math.sqrt(k**dims), 1 / math.sqrt(k**dims))
            self.weights.append(nn.Parameter(w))
        nb = len(self.branches)
        # the per-branch BatchNorms, stacked: channel index c * n_branches + branch
        self.bn = nn.BatchNorm1d(channels * nb) if dims == 1 else nn.BatchNorm2d(channels * nb)
        self.merged_weight: nn.Parameter | None = None
        self.merged_bias: nn.Parameter | None = None

    @property
    def deployed(self) -> bool:
        return self.merged_weight is not None

    def _dilated_kernels(self) -> list[Tensor]:
        """Each branch kernel with its holes, ``(C, *k_eff)``."""
        return [
            dilate_kernel(w, r, self.dims)
            for w, (_, r) in zip(self.weights, self.branches, strict=True)
        ]

    def merged_kernel(self) -> tuple[Tensor, Tensor]:
        """The paper's merge with the current BN running statistics: ``(C, *K)`` and ``(C,)``."""
        if self.merged_weight is not None and self.merged_bias is not None:
            return self.merged_weight, self.merged_bias
        bn = self.bn
        assert bn.running_var is not None and bn.running_mean is not None
        nb, c = len(self.branches), self.channels
        std = torch.sqrt(bn.running_var + bn.eps).view(c, nb)
        gamma, beta = bn.weight.view(c, nb), bn.bias.view(c, nb)
        scale = gamma / std
        shift = beta - bn.running_mean.view(c, nb) * scale
        view = (c,) + (1,) * self.dims
        kernel = sum(
            _center_pad(w * scale[:, i].view(view), self.kernel_size, self.dims)
            for i, w in enumerate(self._dilated_kernels())
        )
        return kernel, shift.sum(1)  # type: ignore[return-value]

    def orthogonality_kernels(self) -> list[Tensor]:
        """Depthwise kernels for :func:`agrostress.ops.orthogonality_loss` (each branch with
        its holes, or the merged kernel once deployed)."""
        return [self.merged_kernel()[0]] if self.deployed else self._dilated_kernels()

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Replace the branches and BNs by the single merged depthwise conv."""
        if self.deployed:
            return
        w, b = self.merged_kernel()
        self.merged_weight = nn.Parameter(w.detach().clone())
        self.merged_bias = nn.Parameter(b.detach().clone())
        del self.weights, self.bn

    deploy = reparameterize

    def forward(self, x: Tensor) -> Tensor:
        if self.deployed or not self.training:
            w, b = self.merged_kernel()
            return dw_conv(x, w, b, path=self.path)
        bsz, nb = x.shape[0], len(self.branches)
        kernels = self._dilated_kernels()
        if self.dims == 1 and resolve_path(self.path, x.shape[-1], x.device, "direct") == "dense":
            length = x.shape[-1]
            mats = torch.stack(
                [toeplitz(w, length, (w.shape[-1] - 1) // 2) for w in kernels], dim=1
            )  # (C, nb, L, L)
            y = apply_toeplitz(x, mats.flatten(1, 2))  # (B, C, nb * L)
        else:
            y = torch.stack([dw_conv(x, w, path=self.path) for w in kernels], dim=2)
        y = self.bn(y.reshape(bsz, self.channels * nb, *x.shape[2:]))
        return y.view(bsz, self.channels, nb, *x.shape[2:]).sum(2)
