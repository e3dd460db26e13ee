"""Shared building blocks: execution-path choice, depthwise/long convolutions with a dense
(Toeplitz) fast path, real DFT matrices, channels-first norms and BN folding.

Conventions
-----------
* A depthwise 1-D kernel ``weight`` has shape ``(C, K)`` and is applied as a *cross-correlation*
  (like ``F.conv1d``) with ``pad_left`` zeros on the left, ``K_eff - 1 - pad_left`` on the
  right (``K_eff = dilation * (K - 1) + 1``), so the output has the input length:
  ``y[t] = sum_j weight[j] * x[t + dilation * j - pad_left]`` (``x`` is zero outside ``[0, L)``).
* "dense" computes a linear map along time as one matmul with a materialised ``L x L``
  matrix (Toeplitz for convolutions, DFT matrices for spectral transforms); "fft" uses
  ``torch.fft`` (cuFFT on a GPU); "direct" uses ``F.conv1d``. All paths compute the same
  function; "auto" picks by sequence length and device (:func:`resolve_path`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Longest sequence for which the dense (matmul) form is chosen automatically, per kind of
# time mixing and device. Measured on the shared 2-core CPU of the development machine (see
# docs/ops.md): dense Toeplitz beat F.conv1d for depthwise kernels at every length tried
# (up to 192); dense DFT matrices beat torch.fft clearly below ~40 steps and, since the
# Fourier unit's chunked inference path, by 5-10 % at 48 and 96 as well (three runs, forward
# and forward+backward; a tie at 96 forward with two threads). On an H200
# (bench/results/cuda/ops_cuda_fourier.txt, B = 4096, C = 64) the dense DFT was as fast as
# cuFFT or faster up to L = 96 (forward and backward), mixed at 192 and slower at 384. The
# CUDA Toeplitz limit is an untested guess.
DENSE_MAX_LEN: dict[str, dict[str, int]] = {
    "toeplitz": {"cpu": 128, "cuda": 256},
    "dft": {"cpu": 96, "cuda": 96},
}


def resolve_path(
    path: str, length: int, device: torch.device, long: str = "fft", kind: str = "toeplitz"
) -> str:
    """Map ``"auto"`` to ``"dense"`` for sequences up to ``DENSE_MAX_LEN[kind]`` on the
    device, else to ``long``; other values pass through (validated)."""
    if path not in ("auto", "dense", "fft", "direct"):
        raise ValueError(f"unknown path {path!r}")
    if path != "auto":
        return path
    limits = DENSE_MAX_LEN[kind]
    return "dense" if length <= limits.get(device.type, limits["cpu"]) else long


def same_pad(kernel_size: int, dilation: int = 1) -> int:
    """Left padding giving a centred ("same") convolution."""
    return dilation * (kernel_size - 1) // 2


# --------------------------------------------------------------------------- Toeplitz


def _normal_tensors(fn):
    """Build cached constants outside ``torch.inference_mode``: a cached inference tensor
    would later break autograd (e.g. explaining a model after it has predicted)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with torch.inference_mode(False):
            return fn(*args, **kwargs)

    return wrapper


@functools.lru_cache(maxsize=512)
@_normal_tensors
def _toeplitz_index(
    length: int, k: int, pad_left: int, dilation: int, device: torch.device
) -> Tensor:
    t = torch.arange(length, device=device)[:, None]
    s = torch.arange(length, device=device)[None, :]
    off = s - t + pad_left
    tap = torch.div(off, dilation, rounding_mode="floor")
    valid = (off >= 0) & (off % dilation == 0) & (tap < k)
    return torch.where(valid, tap, torch.full_like(tap, k))


def toeplitz(weight: Tensor, length: int, pad_left: int, dilation: int = 1) -> Tensor:
    """Materialise a depthwise kernel ``(..., K)`` as matrices ``(..., L, L)`` with
    ``y[t] = sum_s T[t, s] x[s]`` (differentiable gather)."""
    k = weight.shape[-1]
    idx = _toeplitz_index(length, k, pad_left, dilation, weight.device)
    return F.pad(weight, (0, 1))[..., idx]


def apply_toeplitz(x: Tensor, mats: Tensor) -> Tensor:
    """``y[b, c, t] = sum_s mats[c, t, s] x[b, c, s]`` as one batched matmul over channels."""
    return torch.matmul(x.transpose(0, 1), mats.transpose(1, 2)).transpose(0, 1)


def dw_conv1d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    pad_left: int | None = None,
    dilation: int = 1,
    path: str = "auto",
) -> Tensor:
    """Depthwise "same-length" 1-D convolution, ``weight`` of shape ``(C, K)``.

    ``pad_left`` defaults to a centred kernel. ``path`` is "dense" (Toeplitz matmul),
    "direct" (``F.conv1d``), "fft" or "auto" (dense for short sequences, else direct).
    """
    c, k = weight.shape
    length = x.shape[-1]
    pad_left = same_pad(k, dilation) if pad_left is None else pad_left
    path = resolve_path(path, length, x.device, long="direct")
    if path == "dense":
        y = apply_toeplitz(x, toeplitz(weight, length, pad_left, dilation))
    elif path == "fft":
        w = weight
        if dilation > 1:  # insert the holes explicitly
            w = torch.zeros(c, dilation * (k - 1) + 1, dtype=w.dtype, device=w.device)
            w = w.index_copy(1, torch.arange(0, w.shape[1], dilation, device=w.device), weight)
        y = fft_corr1d(x, w, pad_left)
    else:
        k_eff = dilation * (k - 1) + 1
        xp = F.pad(x, (pad_left, k_eff - 1 - pad_left))
        y = F.conv1d(xp, weight.unsqueeze(1), dilation=dilation, groups=c)
    if bias is not None:
        y = y + bias[:, None]
    return y


def fft_corr1d(x: Tensor, weight: Tensor, pad_left: int) -> Tensor:
    """The cross-correlation of :func:`dw_conv1d` (no dilation) via zero-padded rFFT
    (linear, not circular: ``n >= L + K - 1``)."""
    length, k = x.shape[-1], weight.shape[-1]
    n = length + k - 1
    xf = torch.fft.rfft(fft_ready(x), n=n)
    wf = torch.fft.rfft(fft_ready(weight).flip(-1), n=n)
    full = torch.fft.irfft(xf * wf, n=n)
    start = k - 1 - pad_left
    return full[..., start : start + length].to(x.dtype)


def long_conv1d(x: Tensor, weight: Tensor, pad_left: int, path: str = "auto") -> Tensor:
    """Depthwise convolution with a long kernel ``(C, K)`` (``K`` up to ``2L - 1``).

    "dense" = Toeplitz matmul (fastest on CPU for short L), "fft" = zero-padded rFFT
    convolution (long L, GPU), "direct" = ``F.conv1d``.
    """
    return dw_conv1d(x, weight, None, pad_left, 1, resolve_path(path, x.shape[-1], x.device))


def causal_to_corr(k0: Tensor, k1: Tensor | None = None) -> tuple[Tensor, int]:
    """Turn a causal kernel ``k0 (C, L)`` - ``y[t] = sum_{j>=0} k0[j] x[t-j]`` - and an
    optional anti-causal one ``k1`` - ``+ sum_{j>=1} k1[j-1] x[t+j]`` - into the
    cross-correlation weight and ``pad_left`` used by :func:`dw_conv1d` / ``F.conv1d``."""
    length = k0.shape[-1]
    w = k0.flip(-1)
    if k1 is not None:
        w = torch.cat([w, k1[..., : length - 1]], dim=-1)
    return w, length - 1


def fit_length(k: Tensor, length: int) -> Tensor:
    """Truncate or zero-pad the last axis to ``length``."""
    n = k.shape[-1]
    return k[..., :length] if n >= length else F.pad(k, (0, length - n))


def set_optim(p: nn.Parameter, **hparams: float) -> nn.Parameter:
    """Attach per-parameter optimiser settings (``p._optim``, the S4/safari convention)."""
    p._optim = dict(hparams)  # type: ignore[attr-defined]
    return p


def optim_param_groups(
    model: nn.Module, lr: float, weight_decay: float = 0.0
) -> list[dict[str, object]]:
    """Optimiser parameter groups honouring ``_optim`` overrides (e.g. the lower learning
    rate and zero weight decay of long-convolution kernels)."""
    plain: list[nn.Parameter] = []
    special: dict[tuple[tuple[str, float], ...], list[nn.Parameter]] = {}
    for p in model.parameters():
        if not p.requires_grad:
            continue
        hp = getattr(p, "_optim", None)
        if hp:
            special.setdefault(tuple(sorted(hp.items())), []).append(p)
        else:
            plain.append(p)
    groups: list[dict[str, object]] = [{"params": plain, "lr": lr, "weight_decay": weight_decay}]
    for key, params in special.items():
        g: dict[str, object] = {"params": params, "lr": lr, "weight_decay": weight_decay}
        g.update(dict(key))
        groups.append(g)
    return groups


def dw_conv(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    dilation: int = 1,
    path: str = "auto",
) -> Tensor:
    """Centred depthwise convolution for 1-D ``weight (C, K)`` or 2-D ``weight (C, Kh, Kw)``."""
    if weight.dim() == 2:
        return dw_conv1d(x, weight, bias, None, dilation, path)
    kh, kw = weight.shape[-2:]
    pad = (same_pad(kh, dilation), same_pad(kw, dilation))
    if (kh - 1) * dilation % 2 or (kw - 1) * dilation % 2:
        raise ValueError("2-D depthwise kernels must have odd effective size")
    return F.conv2d(x, weight.unsqueeze(1), bias, padding=pad, dilation=dilation, groups=x.shape[1])


# --------------------------------------------------------------------------- real DFT


@functools.lru_cache(maxsize=128)
@_normal_tensors
def rdft_matrices(
    length: int, n_fft: int, device: torch.device, dtype: torch.dtype
) -> tuple[Tensor, Tensor]:
    """Dense equivalents of ``rfft(x, n=n_fft, norm="ortho")`` and
    ``irfft(X, n=n_fft, norm="ortho")[..., :length]``.

    Returns ``fwd (length, 2F)`` and ``inv (2F, length)`` with ``F = n_fft // 2 + 1``; the
    spectrum layout is ``[Re(X_0..X_{F-1}), Im(X_0..X_{F-1})]`` so ``(x @ fwd).unflatten(-1,
    (2, F))`` is ``stack((X.real, X.imag), -2)``. Like the C2R transform, the inverse ignores
    the imaginary parts of the DC and (even ``n_fft``) Nyquist bins. Built in float64.
    """
    nf = n_fft // 2 + 1
    t = torch.arange(length, dtype=torch.float64)
    f = torch.arange(nf, dtype=torch.float64)
    ang = 2 * math.pi * torch.outer(t, f) / n_fft  # (L, F)
    scale = 1.0 / math.sqrt(n_fft)
    fwd = torch.cat([torch.cos(ang), -torch.sin(ang)], dim=1) * scale
    w = torch.full((nf,), 2.0, dtype=torch.float64)
    w[0] = 1.0
    if n_fft % 2 == 0:
        w[-1] = 1.0
    inv = torch.cat([torch.cos(ang).T * w[:, None], -torch.sin(ang).T * w[:, None]], dim=0)
    inv = inv * scale
    return fwd.to(device=device, dtype=dtype), inv.to(device=device, dtype=dtype)


def fft_ready(x: Tensor) -> Tensor:
    """Upcast half precision for ``torch.fft`` (cuFFT half needs power-of-two sizes)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def rfft_real(x: Tensor, n_fft: int, path: str) -> Tensor:
    """``rfft(x, n_fft, norm="ortho")`` along the last axis as a real ``(..., 2, F)`` tensor."""
    if path == "dense":
        fwd, _ = rdft_matrices(x.shape[-1], n_fft, x.device, x.dtype)
        return (x @ fwd).unflatten(-1, (2, n_fft // 2 + 1))
    xf = torch.fft.rfft(fft_ready(x), n=n_fft, norm="ortho")
    return torch.stack((xf.real, xf.imag), dim=-2).to(x.dtype)


def irfft_real(z: Tensor, length: int, n_fft: int, path: str) -> Tensor:
    """Inverse of :func:`rfft_real`: ``irfft(..., n=n_fft, norm="ortho")[..., :length]``."""
    if path == "dense":
        _, inv = rdft_matrices(length, n_fft, z.device, z.dtype)
        return z.flatten(-2) @ inv
    zf = fft_ready(z)
    y = torch.fft.irfft(torch.complex(zf[..., 0, :], zf[..., 1, :]), n=n_fft, norm="ortho")
    return y[..., :length].to(z.dtype)


# --------------------------------------------------------------------------- norms, helpers


class LayerNormCF(nn.Module):
    """LayerNorm over the channel axis of channels-first tensors ``(B, C, *spatial)``."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        y = F.layer_norm(x.movedim(1, -1), (x.shape[1],), self.weight, self.bias, self.eps)
        return y.movedim(-1, 1)


def get_act(name: str | None) -> nn.Module:
    """Activation module by name (``None``/"none" -> identity)."""
    acts: dict[str, type[nn.Module]] = {
        "relu": nn.ReLU,
        "gelu": nn.GELU,
        "silu": nn.SiLU,
        "sigmoid": nn.Sigmoid,
        "tanh": nn.Tanh,
    }
    if name is None or name == "none":
        return nn.Identity()
    return acts[name]()


def batch_norm(dims: int, channels: int) -> nn.Module:
    """``BatchNorm1d``/``BatchNorm2d`` for ``dims``."""
    return nn.BatchNorm1d(channels) if dims == 1 else nn.BatchNorm2d(channels)


def bn_scale_shift(bn: nn.modules.batchnorm._BatchNorm) -> tuple[Tensor, Tensor]:
    """Per-channel ``(scale, shift)`` of an eval-mode BatchNorm: ``bn(y) = scale * y + shift``."""
    assert bn.running_var is not None and bn.running_mean is not None
    std = torch.sqrt(bn.running_var + bn.eps)
    gamma = bn.weight if bn.weight is not None else torch.ones_like(std)
    beta = bn.bias if bn.bias is not None else torch.zeros_like(std)
    scale = gamma / std
    return scale, beta - bn.running_mean * scale


def fold_bn(
    weight: Tensor, bias: Tensor | None, bn: nn.modules.batchnorm._BatchNorm
) -> tuple[Tensor, Tensor]:
    """Fold an eval-mode BatchNorm into the preceding conv/linear ``weight (Cout, ...)``."""
    scale, shift = bn_scale_shift(bn)
    w = weight * scale.reshape(-1, *([1] * (weight.dim() - 1)))
    b = shift if bias is None else bias * scale + shift
    return w, b


def fold_scale(weight: Tensor, scale: Tensor) -> Tensor:
    """Scale output channels (dim 0) of a weight."""
    return weight * scale.reshape(-1, *([1] * (weight.dim() - 1)))


def conv_nd(dims: int) -> type[nn.Module]:
    """``nn.Conv1d``/``nn.Conv2d`` for ``dims``."""
    return nn.Conv1d if dims == 1 else nn.Conv2d


def pointwise(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """1x1 convolution ``(Cout, Cin)`` on channels-first ``x (B, Cin, *spatial)``."""
    w = weight.view(*weight.shape, *([1] * (x.dim() - 2)))
    return (F.conv1d if x.dim() == 3 else F.conv2d)(x, w, bias)


def time_major_pointwise(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """1x1 convolution ``(Cout, Cin)`` on time-major ``x (L, Cin, N)`` -> ``(L, Cout, N)``:
    one batched matmul over the steps, the bias added inside the GEMM (no extra pass)."""
    length, _, n = x.shape
    w = weight.expand(length, *weight.shape)
    if bias is None:
        return torch.bmm(w, x)
    return torch.baddbmm(bias[None, :, None].expand(length, -1, n), w, x)


def reparameterize_model(module: nn.Module) -> nn.Module:
    """Call ``reparameterize()`` on every submodule that defines it (inference form)."""
    for m in list(module.modules()):
        if m is not module and hasattr(m, "reparameterize"):
            m.reparameterize()
    if hasattr(module, "reparameterize"):
        module.reparameterize()
    return module


def head_count(channels: int, heads: int | None) -> int:
    """Attention heads: ``heads`` (default ``channels // 16``, at least 1), lowered until it
    divides ``channels``."""
    h = heads or max(1, channels // 16)
    while channels % h:
        h -= 1
    return h


def qkv_heads(x: Tensor, qkv: nn.Linear, heads: int) -> tuple[Tensor, Tensor, Tensor]:
    """``(B, C, *spatial)`` → queries, keys, values ``(B, heads, N, C / heads)`` through the
    fused projection ``qkv`` (tokens: the flattened spatial positions)."""
    bsz, c = x.shape[:2]
    t = x.flatten(2).transpose(1, 2)  # (B, N, C)
    q, k, v = qkv(t).view(bsz, t.shape[1], 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    return q, k, v


def merge_heads(o: Tensor, like: Tensor, out: Callable[[Tensor], Tensor]) -> Tensor:
    """Head outputs ``(B, heads, N, d)`` → ``out`` over the channels → ``like``'s layout
    ``(B, C, *spatial)``."""
    bsz, c = like.shape[:2]
    y = out(o.transpose(1, 2).reshape(bsz, -1, c))
    return y.transpose(1, 2).reshape(like.shape)

