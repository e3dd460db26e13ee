"""FFDNN (Shi, Han et al. 2023): photochemical-filter series → Fourier convolution blocks →
capsule feature encoder → class capsules; a linear head on the class capsules gives the class
scores (the capsule lengths are the scores only with ``ce_weight=0``, the paper's form).

Trained with the margin loss (m⁺ 0.9, m⁻ 0.1, λ 0.5) plus, by default, a cross-entropy head on
the class-capsule vectors for calibrated probabilities (``ce_weight``; 0 disables the head and
the logits become log-normalised capsule lengths).

``context > 0`` gives the pixel its neighbourhood: the input is a patch ``(B, T, F, P, P)``
(P = 2·context + 1) and the series entering the Fourier blocks is
``[centre, patch mean, patch standard deviation]`` per feature and date (3F channels). Yellow
rust is patchy (foci) and nitrogen deficiency field-uniform, so the local mean steadies the
pixel's evidence and the local spread measures patchiness. Whole images run with
:meth:`FFDNN.forward_image` (box filters, reflect padding at the border), equal to the patch
path.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from agrostress.models.base import StressModel
from agrostress.models.capsules import PrimaryCapsules, RoutingCapsules, margin_loss
from agrostress.models.neighbourhood import neighbourhood_rows
from agrostress.models.neighbourhood import std_from_moments as _std
from agrostress.models.registry import register_model
from agrostress.ops import create_op
from agrostress.ops._common import bn_scale_shift, time_major_pointwise


class FourierBlock(nn.Module):
    """Residual Fourier convolution unit: x + drop(FFC(x))."""

    def __init__(self, channels: int, length: int, ratio_global: float, path: str, dropout: float):
        super().__init__()
        self.ffc = create_op("fourier", channels=channels, length=length,
                             ratio_global=ratio_global, path=path)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training and not torch.is_grad_enabled():  # inference: no new tensor
            return self.ffc(x).add_(x)
        return x + self.drop(self.ffc(x))


#: pixel columns of the time-major path are padded to a multiple of this: with whole SIMD
#: blocks every column goes through the same GEMM micro-kernel, so a pixel's logits do not
#: depend on how many pixels share its pass (tiles reproduce a single pass bit for bit;
#: measured exact for every multiple of 32 from 32 to 4,000 columns, not for 1-31 or 48).
#: Every GEMM, the class head included, runs on the aligned columns; only then are they
#: cropped (on an AMD EPYC host MKL's ``addmm`` gave other last bits for 7 or 255 columns).
TIME_MAJOR_ALIGN = 64


@register_model("ffdnn")
class FFDNN(StressModel):
    """Fast Fourier convolutional deep neural network with a capsule encoder."""

    def __init__(
        self,
        n_features: int,
        n_steps: int,
        n_classes: int = 3,
        channels: int = 32,
        depth: int = 2,
        ratio_global: float = 0.5,
        primary_types: int = 8,
        primary_dim: int = 8,
        positions: int = 4,
        class_dim: int = 16,
        routing_iterations: int = 3,
        ce_weight: float = 0.5,
        dropout: float = 0.1,
        fourier_path: str = "auto",
        context: int = 0,
        reference: bool = False,
        absolute: bool = True,
        season_mask: bool = False,
    ):
        super().__init__()
        if context < 0:
            raise ValueError("context must be >= 0")
        self.n_classes, self.ce_weight, self.context = n_classes, ce_weight, int(context)
        self.relative, self.absolute = bool(reference), bool(absolute) or not reference
        self.season_mask = bool(season_mask)
        # the scene's reference series (T, F), normalised; set per scene, not saved
        self.register_buffer("reference_series", torch.zeros(n_steps, n_features),
                             persistent=False)
        # grid steps observed so far (steps after the season's horizon are masked); per scene
        self.register_buffer("observed_steps", torch.tensor(n_steps), persistent=False)
        n_in = (n_features * (2 if reference and absolute else 1) + int(self.season_mask)) \
            * (3 if context else 1)
        self.stem = nn.Sequential(
            nn.Conv1d(n_in, channels, kernel_size=1), nn.BatchNorm1d(channels), nn.GELU()
        )
        self.blocks = nn.Sequential(
            *[FourierBlock(channels, n_steps, ratio_global, fourier_path, dropout)
              for _ in range(depth)]
        )
        self.primary = PrimaryCapsules(channels, primary_types, primary_dim, positions)
        self.routing = RoutingCapsules(
            primary_types * positions, primary_dim, n_classes, class_dim, routing_iterations
        )
        self.ce_head = nn.Linear(n_classes * class_dim, n_classes) if ce_weight > 0 else None

    def warm_start(self, state: dict[str, Tensor]) -> None:
        """Load the weights of an FFDNN of the same configuration; a whole-season model's
        weights go into a ``season_mask`` model with the observed-step channels' stem weights
        at zero, so it starts as the same function on whole seasons."""
        state = dict(state)
        w_old, w_new = state["stem.0.weight"], self.stem[0].weight
        if self.season_mask and w_old.shape[1] != w_new.shape[1]:
            groups = 3 if self.context else 1
            f_old, f_new = w_old.shape[1] // groups, w_new.shape[1] // groups
            if f_new != f_old + 1 or w_old.shape[1] % groups:
                raise ValueError(f"cannot warm-start a stem of {w_new.shape[1]} inputs "
                                 f"from one of {w_old.shape[1]}")
            w = w_new.new_zeros(w_new.shape)
            for g in range(groups):
                w[:, g * f_new : g * f_new + f_old] = w_old[:, g * f_old : (g + 1) * f_old]
            state["stem.0.weight"] = w
        self.load_state_dict(state)

    def set_reference(self, series: Tensor) -> None:
        """The reference series (T, F), normalised like the inputs, for the calls that follow."""
        if series.shape != self.reference_series.shape:
            raise ValueError(f"reference must be {tuple(self.reference_series.shape)}, "
                             f"got {tuple(series.shape)}")
        self.reference_series.copy_(series)

    def set_horizon(self, steps: int) -> None:
        """Grid steps observed so far (the season's horizon) for the calls that follow: later
        steps are masked (``season_mask`` models; the others need the whole season)."""
        t = self.reference_series.shape[0]
        if not 1 <= int(steps) <= t:
            raise ValueError(f"observed steps must be in 1..{t}, got {steps}")
        if not self.season_mask and int(steps) != t:
            raise ValueError("this model was trained on whole seasons: it cannot mask steps")
        self.observed_steps.fill_(int(steps))

    def with_reference(self, x: Tensor, ref: Tensor | None = None,
                       horizon: Tensor | None = None) -> Tensor:
        """With ``reference``: the input (B, T, F, …) beside its deviation from the reference
        (the scene's, or per sample (B, T, F) in training) → (B, T, 2F, …); without
        ``absolute``, the deviation alone (B, T, F, …). With ``season_mask``, steps at or
        after the horizon (the scene's observed steps, or per sample (B,) in training) are
        zeroed and one more channel says which steps were observed."""
        if self.relative:
            r = self.reference_series if ref is None else ref
            r = r.reshape(-1, *r.shape[-2:])
            r = r.view(*r.shape, *([1] * (x.dim() - 3)))
            rel = x - r.to(x.dtype)
            x = torch.cat([x, rel], dim=2) if self.absolute else rel
        if not self.season_mask:
            return x
        h = self.observed_steps if horizon is None else horizon
        seen = torch.arange(x.shape[1], device=x.device)[None, :] < h.reshape(-1, 1)
        seen = seen.to(x.dtype).view(seen.shape[0], x.shape[1], 1, *([1] * (x.dim() - 3)))
        flag = seen.expand(x.shape[0], x.shape[1], 1, *x.shape[3:])
        return torch.cat([x * seen, flag], dim=2)

    def neighbourhood(self, x: Tensor) -> Tensor:
        """Patches (B, T, F, P, P) → (B, T, 3F): centre, mean and standard deviation."""
        if x.dim() != 5 or x.shape[-1] != 2 * self.context + 1 or x.shape[-2] != x.shape[-1]:
            raise ValueError(f"context {self.context} needs patches (B, T, F, "
                             f"{2 * self.context + 1}, {2 * self.context + 1}), got {tuple(x.shape)}")
        c = self.context
        flat = x.flatten(3)
        mean = flat.mean(dim=3)
        std = _std(mean, flat.pow(2).mean(dim=3))
        return torch.cat([x[..., c, c], mean, std], dim=2)

    def capsules(self, x: Tensor, ref: Tensor | None = None,
                 horizon: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """x (B, T, F) series, or patches when ``context`` > 0 → class capsules
        (B, n_classes, class_dim) and routing couplings (``ref``, ``horizon``: see
        :meth:`with_reference`)."""
        x = self.with_reference(x, ref, horizon)
        if self.context:
            x = self.neighbourhood(x)
        return self._encode(self.stem(x.transpose(1, 2)))

    def _encode(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """Stem output (B, C, T) → Fourier blocks → primary and class capsules."""
        return self.routing(self.primary(self.blocks(h)))

    def _logits(self, v: Tensor) -> Tensor:
        if self.ce_head is not None:
            return self.ce_head(v.flatten(1))
        lengths = v.norm(dim=-1)
        return torch.log(lengths / lengths.sum(dim=1, keepdim=True) + 1e-9)

    #: pixels per pass of the time-major inference path (every activation about 3 MB)
    time_major_chunk: int = 2048

    #: the same on an accelerator, where larger passes pay
    time_major_chunk_accelerator: int = 1 << 18

    def uses_time_major(self, x: Tensor) -> bool:
        """Whether a call runs the time-major inference path: eval mode, no gradients, a
        float32/float64 tensor."""
        return (not self.training and not torch.is_grad_enabled()
                and x.dtype in (torch.float32, torch.float64))

    def _time_major_pixels(self, x: Tensor) -> int:
        cpu = x.device.type == "cpu"
        return self.time_major_chunk if cpu else self.time_major_chunk_accelerator

    def logits_time_major(self, feats: Tensor) -> Tensor:
        """Eval-mode logits from time-major stem input ``(T, F', N)`` (``F'`` = the stem's
        input features, ``3F`` with context) → ``(n_classes, N)``.

        The pixels stay innermost from the stem to the class capsules: the stem and every
        1×1 convolution are one matmul batched over time, the Fourier units run
        :meth:`~agrostress.ops.FourierConv.forward_time_major`, the temporal pooling of the
        primary capsules is one matmul and the routing is element-wise over the pixels.
        """
        n = feats.shape[-1]
        if n % TIME_MAJOR_ALIGN:  # zero columns up to the alignment: see TIME_MAJOR_ALIGN
            feats = F.pad(feats, (0, TIME_MAJOR_ALIGN - n % TIME_MAJOR_ALIGN))
        conv, bn, act = self.stem
        scale, shift = bn_scale_shift(bn)
        w = conv.weight[:, :, 0] * scale[:, None]
        h = act(time_major_pointwise(feats, w, torch.addcmul(shift, conv.bias, scale)))
        for block in self.blocks:
            h = block.ffc.forward_time_major(h).add_(h)
        v = self.routing.forward_time_major(self.primary.forward_time_major(h))
        if self.ce_head is not None:  # on the aligned columns too, then cropped
            head = torch.addmm(self.ce_head.bias[:, None], self.ce_head.weight,
                               v.reshape(-1, v.shape[-1]))
            return head[:, :n]
        lengths = v[..., :n].norm(dim=1)
        return torch.log(lengths / lengths.sum(dim=0, keepdim=True) + 1e-9)

    def _forward_time_major(self, x: Tensor) -> Tensor:
        x = self.with_reference(x)
        n = self._time_major_pixels(x)
        out = []
        for i in range(0, x.shape[0], n):
            xi = self.neighbourhood(x[i : i + n]) if self.context else x[i : i + n]
            out.append(self.logits_time_major(xi.permute(1, 2, 0).contiguous()).T)
        return torch.cat(out)

    def forward(self, x: Tensor, ref: Tensor | None = None,
                horizon: Tensor | None = None) -> Tensor:
        if ref is not None or horizon is not None:  # per-sample (training, validation, time line)
            return self._logits(self.capsules(x, ref, horizon)[0])
        if self.uses_time_major(x):
            return self._forward_time_major(x)
        v, _ = self.capsules(x)
        return self._logits(v)

    def forward_image(self, x: Tensor, pixel_batch: int = 16384) -> Tensor:
        """A whole image (1, T, F, H, W) → logits (1, n_classes, H, W).

        Runs in blocks of image rows (about ``pixel_batch`` pixels), so the neighbourhood
        statistics and every intermediate stay small. Inference (eval mode, no gradients)
        takes the time-major path (:meth:`logits_time_major`) in blocks of
        ``time_major_chunk`` pixels.
        """
        x = self.with_reference(x)
        if self.uses_time_major(x):
            return self._forward_image_time_major(x)
        _, t, f, h, w = x.shape
        r = self.context
        img = x[0].transpose(0, 1).reshape(f * t, h, w)  # feature-major planes (F·T, H, W)
        if r and min(h, w) > r:
            img = F.pad(img[None], (r,) * 4, mode="reflect")[0]
        elif r:  # image smaller than the context: numpy reflects repeatedly, like the patches
            pad = np.pad(img.detach().cpu().numpy(), ((0, 0), (r, r), (r, r)), mode="reflect")
            img = torch.from_numpy(pad).to(img)
        step = max(1, pixel_batch // w)
        logits = []
        for y0 in range(0, h, step):
            ny = min(step, h - y0)
            if r:
                block = img[:, y0 : y0 + ny + 2 * r]
                mean = _box_mean(block, r)
                std = _std(mean, _box_mean(block.pow(2), r))
                centre = block[:, r : r + ny, r : r + w]
                feats = torch.cat([centre, mean, std])  # (3F·T, ny, W)
            else:
                feats = img[:, y0 : y0 + ny]
            v, _ = self._encode(self._stem_feature_major(feats.reshape(-1, t * ny * w), t))
            logits.append(self._logits(v))
        return torch.cat(logits).T.reshape(1, -1, h, w)

    def _forward_image_time_major(self, x: Tensor) -> Tensor:
        """:meth:`forward_image` in eval mode without gradients: the input's own time-major
        planes (T·F, H, W), neighbourhood statistics per row block (compiled on the CPU)
        (:func:`~agrostress.models.neighbourhood.neighbourhood_rows`, reflecting at the border
        as the patches do), and :meth:`logits_time_major`."""
        _, t, f, h, w = x.shape
        img = x[0].reshape(t * f, h, w)
        step = max(1, self._time_major_pixels(x) // w)
        logits = []
        for y0 in range(0, h, step):
            ny = min(step, h - y0)
            if self.context:
                feats = neighbourhood_rows(img, t, y0, ny, self.context)  # (T, 3F, ny, W)
            else:
                feats = img[:, y0 : y0 + ny].unflatten(0, (t, f))
            logits.append(self.logits_time_major(feats.reshape(t, -1, ny * w)))
        return torch.cat(logits, dim=1).reshape(1, -1, h, w)

    def _stem_feature_major(self, feats: Tensor, t: int) -> Tensor:
        """The stem on feature-major input (F', T·px) → (px, C, T): the 1×1 conv is one
        matmul, and its (C·T, px) output becomes pixel-major with one blocked 2-D transpose."""
        conv, bn, act = self.stem
        if self.training:
            y = torch.addmm(conv.bias[:, None], conv.weight[:, :, 0], feats)  # (C, T·px)
            y = act(bn(y[None]))[0]  # BN1d over (1, C, T·px) = over (B, C, T)
        else:  # BatchNorm folded into the 1×1 conv
            scale, shift = bn_scale_shift(bn)
            b = torch.addcmul(shift, conv.bias, scale)[:, None]
            y = act(torch.addmm(b, conv.weight[:, :, 0] * scale[:, None], feats))
        return y.reshape(y.shape[0] * t, -1).t().contiguous().view(-1, y.shape[0], t)

    def training_loss(self, x: Tensor, y: Tensor, class_weight: Tensor | None = None,
                      ref: Tensor | None = None, horizon: Tensor | None = None) -> Tensor:
        v, _ = self.capsules(x, ref, horizon)
        loss = margin_loss(v.norm(dim=-1), y, weight=class_weight)
        if self.ce_head is not None:
            loss = loss + self.ce_weight * F.cross_entropy(self._logits(v), y, weight=class_weight)
        return loss


def _box_mean(x: Tensor, r: int) -> Tensor:
    """Mean over (2r+1)² windows of (C, H + 2r, W + 2r) → (C, H, W): separable sums of 2r+1
    shifted slices (exact in float32, unlike running sums along wide rows)."""
    p = 2 * r + 1
    h, w = x.shape[1] - 2 * r, x.shape[2] - 2 * r
    rows = x[:, 0:h].clone()
    for k in range(1, p):
        rows += x[:, k : k + h]
    out = rows[:, :, 0:w].clone()
    for k in range(1, p):
        out += rows[:, :, k : k + w]
    return out / (p * p)
