"""Fourier convolution unit (FFDNN's perception unit; FFC, Chi et al., NeurIPS 2020).

Channels are split into a local part ``x_l`` (``C - c_g``) and a global part ``x_g``
(``c_g = int(C * ratio_global)``)::

    out_l = conv_k(x_l -> l) + conv_k(x_g -> l)
    out_g = conv_k(x_l -> g) + SpectralTransform(x_g)
    out   = act(BN([out_l, out_g]))                                  # FFC_BN_ACT

    SpectralTransform(x_g) = conv1x1_2(s + FU(s)),   s = ReLU(BN(conv1x1_1(x_g)))   (C_g -> C_g/2)
    FU(s) = irFFT( ReLU(BN(conv1x1( [Re, Im](rFFT(s)) ))) )          (norm="ortho")

The spectral 1x1 conv mixes the stacked real/imaginary channels at every frequency; BN and
ReLU act in the frequency domain, so the unit is *not* a linear filter and cannot be written
as one ``L x L`` matrix. What *is* linear is the transform pair: the **dense path** replaces
``rfft``/``irfft`` by multiplication with cached real DFT matrices (``L x 2F`` and ``2F x L``,
see :func:`agrostress.ops._common.rdft_matrices`) and applies exactly the same
frequency-domain operations in between, so it computes the same function as the **fft path**
(``torch.fft``, cuFFT on a GPU) for every ``L`` - odd, prime or power of two - with the same
parameters. ``path="auto"`` takes the dense path for ``L <= DENSE_MAX_LEN["dft"]`` on the
device (96 on CPU and CUDA) and ``torch.fft`` above it; either can be forced.

Padding: ``padding="circular"`` (FFC) transforms the ``L`` samples as they are, so the
spectral branch treats the series as periodic (the last date wraps to the first).
``padding="linear"`` zero-pads to ``n_fft = 2L`` before the transform and crops the first
``L`` samples after it, which removes the wrap-around (twice the frequency bins).

Everything stays channels-first: the transform is one plain GEMM over ``(B*C_g/2, L)`` rows
and its output reshapes for free into FFC's ``[Re, Im]``-interleaved channels (no permute
copies); local -> local and global -> local share one convolution (``C -> C_l``, and
local -> global runs on the local channels: no zero block); in eval mode every BatchNorm is
folded into the preceding weights. Two forms: this one (channels-first; training, eval,
2-D) and :meth:`FourierConv.forward_time_major` on ``(L, C, N)`` (1-D) — the form FFDNN's
inference runs end to end.
FFC's optional local Fourier unit (LFU) is not implemented. 2-D (``dims=2``, ``rfft2``) is
supported on the fft path only.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._common import (
    _normal_tensors,
    batch_norm,
    bn_scale_shift,
    fft_ready,
    fold_bn,
    fold_scale,
    get_act,
    rdft_matrices,
    resolve_path,
    time_major_pointwise,
)
from .registry import register_op

__all__ = ["FourierConv", "FourierConv1d", "FourierConv2d", "fourier_reference"]


@register_op("fourier", dims=(1, 2))
class FourierConv(nn.Module):
    """FFC-style Fourier convolution unit mapping ``(B, C, L)`` (or ``(B, C, H, W)``) to itself.

    Args:
        channels: ``C``.
        length: unused (DFT matrices are built per input length and cached).
        dims: 1 (time series) or 2 (images; fft path only).
        ratio_global: fraction of channels in the global (spectral) branch.
        kernel_size: taps of the local and cross convolutions.
        path: "auto", "fft" or "dense" (dense: 1-D only).
        padding: "circular" or "linear" (zero-pad to twice the length before the transform).
        act: activation after the output BatchNorm ("relu" as FFC_BN_ACT, or None).
    """

    def __init__(
        self,
        channels: int,
        length: int | None = None,
        dims: int = 1,
        ratio_global: float = 0.5,
        kernel_size: int = 3,
        path: str = "auto",
        padding: str = "circular",
        act: str | None = "relu",
    ) -> None:
        super().__init__()
        if not 0.0 < ratio_global <= 1.0:
            raise ValueError("ratio_global must be in (0, 1]")
        if padding not in ("circular", "linear"):
            raise ValueError("padding must be 'circular' or 'linear'")
        if kernel_size % 2 != 1:
            raise ValueError("kernel_size must be odd")
        self.channels, self.dims, self.kernel_size = channels, dims, kernel_size
        self.c_g = max(1, int(channels * ratio_global))
        self.c_l = channels - self.c_g
        self.hidden = max(1, self.c_g // 2)
        self.path, self.padding = path, padding
        self.resolve(1)  # validate path/dims early
        cl, cg, h, k = self.c_l, self.c_g, self.hidden, kernel_size
        shape = (k,) * dims

        def conv_w(cout: int, cin: int, *ks: int) -> nn.Parameter:
            w = torch.empty(cout, cin, *ks)
            nn.init.kaiming_uniform_(w, a=5**0.5)
            return nn.Parameter(w)

        # local/cross convolutions (FFC: convl2l, convg2l, convl2g), no bias (BN follows)
        self.w_l2l = conv_w(cl, cl, *shape) if cl else None
        self.w_g2l = conv_w(cl, cg, *shape) if cl else None
        self.w_l2g = conv_w(cg, cl, *shape) if cl else None
        # spectral transform
        self.w_in = conv_w(h, cg)  # conv1 (1x1)
        self.bn_in = batch_norm(dims, h)
        self.w_spec = conv_w(2 * h, 2 * h)  # FourierUnit conv (1x1 over [Re, Im] channels)
        self.bn_spec = batch_norm(dims, 2 * h)
        self.w_out = conv_w(cg, h)  # conv2 (1x1)
        self.bn_out = batch_norm(dims, channels)  # FFC_BN_ACT's bn_l and bn_g
        self.act = get_act(act)

    # ------------------------------------------------------------------ helpers
    def resolve(self, length: int, device: torch.device | None = None) -> str:
        """Execution path ("dense" or "fft") used for a given length and device."""
        if self.path not in ("auto", "dense", "fft"):
            raise ValueError("path must be 'auto', 'dense' or 'fft'")
        if self.dims == 2:
            if self.path == "dense":
                raise NotImplementedError("the dense path is 1-D only; use path='fft'")
            return "fft"
        return resolve_path(self.path, length, device or torch.device("cpu"), kind="dft")

    def n_fft(self, length: int) -> int:
        return 2 * length if self.padding == "linear" else length

    def _effective(self) -> dict[str, Tensor | None]:
        """Conv-ready weights; in eval mode every BatchNorm is folded in (biases set)."""
        one = (1,) * self.dims
        e: dict[str, Tensor | None] = {
            "w_l": torch.cat([self.w_l2l, self.w_g2l], dim=1) if self.c_l else None,
            "b_l": None,
            "w_lg": self.w_l2g,
            "b_lg": None,
            "w_in": self.w_in.view(*self.w_in.shape, *one),
            "b_in": None,
            "w_spec": self.w_spec.view(*self.w_spec.shape, *one),
            "b_spec": None,
            "w_out": self.w_out.view(*self.w_out.shape, *one),
        }
        if self.training:
            return e
        cl = self.c_l
        so, to = bn_scale_shift(self.bn_out)
        if cl:
            e["w_l"], e["b_l"] = fold_scale(e["w_l"], so[:cl]), to[:cl]  # type: ignore[arg-type]
            e["w_lg"] = fold_scale(self.w_l2g, so[cl:])
        e["b_lg"] = to[cl:]
        e["w_out"] = fold_scale(e["w_out"], so[cl:])  # type: ignore[arg-type]
        e["w_in"], e["b_in"] = fold_bn(e["w_in"], None, self.bn_in)  # type: ignore[arg-type]
        e["w_spec"], e["b_spec"] = fold_bn(e["w_spec"], None, self.bn_spec)  # type: ignore[arg-type]
        return e

    def _fourier_unit(self, s: Tensor, e: dict[str, Tensor | None], path: str) -> Tensor:
        """FourierUnit on ``s (B, h, *spatial)``: transform, 1x1 conv, BN, ReLU, inverse."""
        bsz, h = s.shape[:2]
        spatial = s.shape[2:]
        conv = F.conv1d if self.dims == 1 else F.conv2d
        if self.dims == 1:
            n = self.n_fft(spatial[0])
            nf = n // 2 + 1
            if path == "dense":  # x @ DFT: (B, h, [Re | Im]) -> channel 2c + part, as FFC
                fwd, inv = rdft_matrices(spatial[0], n, s.device, s.dtype)
                z = (s @ fwd).view(bsz, 2 * h, nf)
            else:
                zc = torch.fft.rfft(fft_ready(s), n=n, norm="ortho")
                z = torch.stack((zc.real, zc.imag), dim=2).view(bsz, 2 * h, nf).to(s.dtype)
        else:
            sizes = tuple(self.n_fft(d) for d in spatial)
            zc = torch.fft.rfft2(fft_ready(s), s=sizes, norm="ortho")
            z = torch.stack((zc.real, zc.imag), dim=2).reshape(bsz, 2 * h, *zc.shape[2:])
            z = z.to(s.dtype)
        if self.dims == 1:  # oneDNN: half the time of a batched matmul (AMD EPYC, Zen 4)
            z = F.conv1d(z, e["w_spec"])  # type: ignore[arg-type]
            z = z.add_(e["b_spec"][:, None]) if e["b_spec"] is not None else self.bn_spec(z)
        else:
            z = conv(z, e["w_spec"], e["b_spec"])
            z = z if e["b_spec"] is not None else self.bn_spec(z)
        z = torch.relu_(z)
        if self.dims == 1:
            if path == "dense":
                return z.view(bsz, h, 2 * nf) @ inv
            zz = fft_ready(z).view(bsz, h, 2, nf)
            out = torch.fft.irfft(torch.complex(zz[:, :, 0], zz[:, :, 1]), n=n, norm="ortho")
            return out[..., : spatial[0]].to(s.dtype)
        zz = fft_ready(z).view(bsz, h, 2, *z.shape[2:])
        out = torch.fft.irfft2(torch.complex(zz[:, :, 0], zz[:, :, 1]), s=sizes, norm="ortho")
        return out[(..., *[slice(0, d) for d in spatial])].to(s.dtype)

    def forward(self, x: Tensor) -> Tensor:
        path = self.resolve(x.shape[-1], x.device)
        conv = F.conv1d if self.dims == 1 else F.conv2d
        cl, pad = self.c_l, self.kernel_size // 2
        e = self._effective()
        s = conv(x[:, cl:], e["w_in"], e["b_in"])
        s = torch.relu_(s if e["b_in"] is not None else self.bn_in(s))
        # with no local channels the output bias rides on the last 1x1 conv (no extra pass)
        g = conv(self._fourier_unit(s, e, path).add_(s), e["w_out"], None if cl else e["b_lg"])
        if cl:
            y_l = conv(x, e["w_l"], e["b_l"], padding=pad)  # l2l + g2l: one conv
            y_g = conv(x[:, :cl], e["w_lg"], e["b_lg"], padding=pad)  # l2g
            out = torch.cat([y_l, y_g.add_(g)], dim=1)
        else:
            out = g
        if self.training:
            out = self.bn_out(out)
        # activations in place: every tensor here is a fresh intermediate; on this class of
        # machine allocating (page-faulting) a new output costs as much as the convolutions
        return self._activate(out)

    def _activate(self, out: Tensor) -> Tensor:
        """The output activation, in place for ReLU (``out`` is always a fresh tensor)."""
        return out.relu_() if isinstance(self.act, nn.ReLU) else self.act(out)

    def _inference_weights(self) -> dict[str, Tensor | None]:
        """Eval-mode weights for the inference forms: BatchNorms folded, 1x1 kernels as
        matrices (the spectral one also as a ``k = 1`` kernel), and the local convolutions
        as a ``C -> C_l`` / ``C_l -> C_g`` pair (``w_l``, ``w_lg``: no zero block)."""
        e = self._effective()
        w = {k: e[k] for k in ("b_in", "b_spec", "b_lg", "w_spec")}
        w["w_in"] = e["w_in"][..., 0]  # type: ignore[index]
        w["w_out"] = e["w_out"][..., 0]  # type: ignore[index]
        if self.c_l:
            w.update({k: e[k] for k in ("w_l", "b_l", "w_lg")})
        return w

    def _merged_local(self, w: dict[str, Tensor | None]) -> tuple[Tensor, Tensor]:
        """The pair of local convolutions of ``w`` merged into one ``C -> C`` kernel and
        bias (l2g gets zero taps on the global inputs): :meth:`forward_time_major`'s form."""
        w_lg = F.pad(w["w_lg"], (0, 0, 0, self.c_g))  # type: ignore[arg-type]
        return torch.cat([w["w_l"], w_lg]), torch.cat([w["b_l"], w["b_lg"]])  # type: ignore[list-item]

    def _add_global(self, local: Tensor | None, g: Tensor, w: dict[str, Tensor | None]) -> Tensor:
        """Inference forms' output: the global branch ``g`` added to the global channels of
        the merged local convolution (or alone, with its bias, when there are no local
        channels), then the activation, in place. Channels are on axis 1 in both layouts."""
        if local is None:
            out = g.add_(w["b_lg"][:, None])  # type: ignore[index]
        else:
            out = local
            out[:, self.c_l :] += g
        return self._activate(out)

    def forward_time_major(self, x: Tensor) -> Tensor:
        """Eval mode, 1-D: the same function on time-major input ``(L, C, N)`` (samples
        innermost) -> ``(L, C, N)``.

        In this layout every channel mixing is one matmul batched over the ``L`` steps with
        ``N`` columns, the local ``k``-tap convolution is ``k`` accumulated matmuls on shifted
        time slices (zero padding), and the transform is one matmul (or ``torch.fft``) over
        the leading axis, with the spectrum ordered frequency-major so that no permute copy
        is needed. Pixel-wise models (FFDNN's image path) keep this layout end to end.
        """
        if self.dims != 1 or self.training:
            raise RuntimeError("forward_time_major is the eval-mode 1-D form")
        length, _, n = x.shape
        path = self.resolve(length, x.device)
        w = self._inference_weights()
        cl, h, k, pad = self.c_l, self.hidden, self.kernel_size, self.kernel_size // 2
        out = None
        if cl:  # shifted taps accumulate inside the GEMMs (baddbmm_), bias with the centre
            wl, bl = self._merged_local(w)
            out = time_major_pointwise(x, wl[:, :, pad], bl)
            for j in range(k):
                d = j - pad  # out[t] += W_j x[t + d]
                if d == 0 or abs(d) >= length:
                    continue
                wj = wl[:, :, j].expand(length - abs(d), -1, -1)  # type: ignore[index]
                if d < 0:
                    out[-d:].baddbmm_(wj, x[: length + d])
                else:
                    out[: length - d].baddbmm_(wj, x[d:])
        s = time_major_pointwise(x[:, cl:], w["w_in"], w["b_in"]).relu_()  # type: ignore[arg-type]
        # spectral 1x1 conv with FFC's channel order (2c + part) re-indexed to part * h + c
        perm = torch.arange(2 * h, device=x.device).view(h, 2).T.reshape(-1)
        w_spec = w["w_spec"][..., 0][perm][:, perm]  # type: ignore[index]
        b_spec = w["b_spec"][perm]  # type: ignore[index]
        nfft = self.n_fft(length)
        nf = nfft // 2 + 1
        if path == "dense":
            fwd, inv = _time_major_dft(length, nfft, x.device, x.dtype)
            z = (fwd @ s.view(length, h * n)).view(nf, 2 * h, n)
        else:
            zc = torch.fft.rfft(fft_ready(s), n=nfft, dim=0, norm="ortho")
            z = torch.stack((zc.real, zc.imag), dim=1).view(nf, 2 * h, n).to(s.dtype)
        z = time_major_pointwise(z, w_spec, b_spec).relu_()
        if path == "dense":
            u = (inv @ z.view(2 * nf, h * n)).view(length, h, n)
        else:
            zz = fft_ready(z).view(nf, 2, h, n)
            u = torch.fft.irfft(torch.complex(zz[:, 0], zz[:, 1]), n=nfft, dim=0, norm="ortho")
            u = u[:length].to(s.dtype)
        return self._add_global(out, torch.matmul(w["w_out"], u.add_(s)), w)  # type: ignore[arg-type]

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, c_global={self.c_g}, dims={self.dims}, "
            f"kernel_size={self.kernel_size}, path={self.path!r}, padding={self.padding!r}"
        )


@functools.lru_cache(maxsize=64)
@_normal_tensors
def _time_major_dft(
    length: int, n_fft: int, device: torch.device, dtype: torch.dtype
) -> tuple[Tensor, Tensor]:
    """:func:`rdft_matrices` for the time-major layout: ``fwd (2F, L)`` and ``inv (L, 2F)``
    with the spectrum frequency-major, ``[Re X_0, Im X_0, Re X_1, Im X_1, ...]``."""
    fwd, inv = rdft_matrices(length, n_fft, device, dtype)
    nf = n_fft // 2 + 1
    order = torch.arange(2 * nf, device=device).view(2, nf).T.reshape(-1)
    return fwd.T[order].contiguous(), inv[order].T.contiguous()


class FourierConv1d(FourierConv):
    """:class:`FourierConv` for time series ``(B, C, L)``."""

    def __init__(self, channels: int, length: int | None = None, **kwargs) -> None:
        super().__init__(channels, length, dims=1, **kwargs)


class FourierConv2d(FourierConv):
    """:class:`FourierConv` for images ``(B, C, H, W)`` (fft path)."""

    def __init__(self, channels: int, length: int | None = None, **kwargs) -> None:
        super().__init__(channels, length, dims=2, **kwargs)


def fourier_reference(m: FourierConv, x: Tensor) -> Tensor:
    """Straightforward FFC forward with ``m``'s parameters: separate ``F.conv1d`` calls,
    ``torch.fft`` and the permute/contiguous reshapes of the original FFC code (1-D).

    This is the mathematical definition the fast paths are tested against, and the "naive
    torch.fft" baseline of the benchmark. BatchNorms run as modules (batch statistics in
    training mode, running statistics in eval mode) exactly as in FFC.
    """
    if m.dims != 1:
        raise NotImplementedError("reference is 1-D")
    cl, pad = m.c_l, m.kernel_size // 2
    xl, xg = x[:, :cl], x[:, cl:]
    # spectral transform
    s = torch.relu(m.bn_in(F.conv1d(xg, m.w_in[..., None])))
    bsz, h, length = s.shape
    n = m.n_fft(length)
    ff = torch.fft.rfft(s, n=n, norm="ortho")
    ff = torch.stack((ff.real, ff.imag), dim=-1)  # (B, h, F, 2)
    ff = ff.permute(0, 1, 3, 2).contiguous().view(bsz, 2 * h, -1)
    ff = torch.relu(m.bn_spec(F.conv1d(ff, m.w_spec[..., None])))
    ff = ff.view(bsz, h, 2, -1).permute(0, 1, 3, 2).contiguous()
    fu = torch.fft.irfft(torch.complex(ff[..., 0], ff[..., 1]), n=n, norm="ortho")[..., :length]
    g = F.conv1d(s + fu, m.w_out[..., None])
    if cl:
        out_l = F.conv1d(xl, m.w_l2l, padding=pad) + F.conv1d(xg, m.w_g2l, padding=pad)
        out_g = F.conv1d(xl, m.w_l2g, padding=pad) + g
        out = torch.cat([out_l, out_g], dim=1)
    else:
        out = g
    return m.act(m.bn_out(out))
