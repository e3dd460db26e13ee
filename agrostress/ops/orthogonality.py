"""Convolutional orthogonality regulariser (Wang et al., "Orthogonal Convolutional Neural
Networks", CVPR 2020; existence conditions: Achour et al., "Existence, Stability and
Scalability of Orthogonal Convolutional Neural Networks", JMLR 2022).

``L_orth(K) = || conv(K, K) - I_r0 ||_F^2``: the kernel convolved with itself (full
correlation, stride 1, padding ``k - 1``) must be the identity at zero shift and vanish at
every other shift. For a full ``C_out x C_in`` kernel ``I_r0`` is ``eye(C_out)`` at the
centre; for a depthwise kernel each channel's autocorrelation must be a delta, which forces
an *all-pass* filter (flat magnitude response) - a strong constraint for temporal kernels,
so use a small weight. Achour et al.: orthogonal convolutions exist for almost all
architectures with circular padding, with limitations for "valid"/zero "same" padding.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["conv_orthogonality", "orthogonality_loss"]


def conv_orthogonality(weight: Tensor, depthwise: bool | None = None) -> Tensor:
    """``|| conv(K, K) - I ||_F^2`` for one kernel.

    Accepted shapes: ``(C, k)`` or ``(C, k, k)`` (depthwise kernels as stored by this
    package), ``(C_out, C_in, k)`` / ``(C_out, C_in, k, k)`` (``nn.Conv`` weights; ``C_in = 1``
    is treated as depthwise unless ``depthwise=False``).
    """
    if weight.dim() == 2 or (weight.dim() == 3 and depthwise is True and weight.shape[1] != 1):
        weight = weight.unsqueeze(1)  # package depthwise (C, k) / (C, k, k) -> (C, 1, ...)
    spatial = weight.dim() - 2
    if spatial not in (1, 2):
        raise ValueError(f"unsupported kernel shape {tuple(weight.shape)}")
    conv = F.conv1d if spatial == 1 else F.conv2d
    ks = weight.shape[2:]
    pad = tuple(k - 1 for k in ks)
    dw = weight.shape[1] == 1 if depthwise is None else depthwise
    if dw:
        c = weight.shape[0]
        out = conv(weight.reshape(1, c, *ks), weight, padding=pad, groups=c)[0]  # (C, 2k-1..)
        target = torch.zeros_like(out)
        target[(slice(None), *pad)] = 1.0
    else:
        out = conv(weight, weight, padding=pad)  # (C_out, C_out, 2k-1..)
        target = torch.zeros_like(out)
        eye = torch.eye(weight.shape[0], dtype=out.dtype, device=out.device)
        target[(slice(None), slice(None), *pad)] = eye
    return (out - target).pow(2).sum()


def _module_kernels(model: nn.Module) -> Iterable[tuple[Tensor, bool | None]]:
    for m in model.modules():
        if isinstance(m, nn.Conv1d | nn.Conv2d) and m.weight.shape[-1] > 1:
            yield m.weight, m.groups == m.in_channels and m.weight.shape[1] == 1
        kernels = getattr(m, "orthogonality_kernels", None)
        if callable(kernels):
            for k in kernels():
                yield k, True


def orthogonality_loss(
    target: nn.Module | Tensor | Iterable[Tensor], depthwise: bool | None = None
) -> Tensor:
    """Sum of :func:`conv_orthogonality` over a kernel, an iterable of kernels, or every
    convolution of a module (``nn.Conv1d``/``nn.Conv2d`` weights with ``k > 1`` and kernels
    returned by an ``orthogonality_kernels()`` method). Add ``weight * loss`` to the
    training objective."""
    if isinstance(target, Tensor):
        return conv_orthogonality(target, depthwise)
    pairs = (
        list(_module_kernels(target))
        if isinstance(target, nn.Module)
        else [(t, depthwise) for t in target]
    )
    if not pairs:
        raise ValueError("no convolution kernels found")
    return torch.stack([conv_orthogonality(w, d) for w, d in pairs]).sum()
