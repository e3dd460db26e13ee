"""Capsule layers (Sabour, Frosst & Hinton 2017): squash, primary capsules, dynamic routing
by agreement, and the margin loss — the FFDNN's capsule feature encoder."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from agrostress.ops._common import _normal_tensors


def squash(s: Tensor, dim: int = -1, eps: float = 1e-8) -> Tensor:
    """v = ‖s‖² / (1 + ‖s‖²) · s / ‖s‖ — keeps direction, maps length into [0, 1)."""
    sq = (s * s).sum(dim=dim, keepdim=True)
    return s * (sq / (1.0 + sq) / torch.sqrt(sq + eps))


@functools.lru_cache(maxsize=64)
@_normal_tensors
def pool_matrix(length: int, positions: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """``adaptive_avg_pool1d`` over ``length`` steps as a ``(positions, length)`` matrix
    (window ``i`` spans ``floor(i·L/P)`` to ``ceil((i+1)·L/P)``); cached, as it is built
    again for every pass of the time-major inference path."""
    m = torch.zeros(positions, length, dtype=torch.float64)
    for i in range(positions):
        a, b = (i * length) // positions, -((-(i + 1) * length) // positions)
        m[i, a:b] = 1.0 / (b - a)
    return m.to(device=device, dtype=dtype)


class PrimaryCapsules(nn.Module):
    """Scalar feature maps (B, C, T) → ``n_types × positions`` capsules of ``dim`` (squashed).

    The time axis is pooled to ``positions`` steps first, so the number of capsules (and the
    routing cost) does not grow with the series length.
    """

    def __init__(self, channels: int, n_types: int = 8, dim: int = 8, positions: int = 4):
        super().__init__()
        self.n_types, self.dim, self.positions = n_types, dim, positions
        self.proj = nn.Conv1d(channels, n_types * dim, kernel_size=1)

    def forward_time_major(self, x: Tensor) -> Tensor:
        """Time-major feature maps ``(T, C, N)`` → capsules ``(n_types·positions, dim, N)``
        (the same capsules as :meth:`forward`, samples innermost)."""
        t, c, n = x.shape
        pooled = pool_matrix(t, self.positions, x.device, x.dtype) @ x.view(t, c * n)
        u = torch.matmul(self.proj.weight[:, :, 0], pooled.view(self.positions, c, n))
        u = u.add_(self.proj.bias[:, None]).view(self.positions, self.n_types, self.dim, n)
        return squash(u.transpose(0, 1).reshape(self.n_types * self.positions, self.dim, n), dim=1)

    def forward(self, x: Tensor) -> Tensor:
        x = F.adaptive_avg_pool1d(x, self.positions)  # (B, C, P)
        u = self.proj(x)  # (B, types*dim, P)
        b = u.shape[0]
        u = u.view(b, self.n_types, self.dim, self.positions).permute(0, 1, 3, 2)
        return squash(u.reshape(b, self.n_types * self.positions, self.dim))


class RoutingCapsules(nn.Module):
    """Class capsules from input capsules by routing-by-agreement.

    ``u_hat[j|i] = W_ij u_i``; coupling ``c = softmax_j(b)``; ``v_j = squash(Σ_i c_ij u_hat)``;
    ``b += u_hat · v``, repeated ``iterations`` times. Weights are per input capsule.
    """

    def __init__(self, n_in: int, dim_in: int, n_out: int, dim_out: int, iterations: int = 3):
        super().__init__()
        if iterations < 1:
            raise ValueError("routing needs at least one iteration")
        self.n_in, self.n_out, self.dim_out, self.iterations = n_in, n_out, dim_out, iterations
        self.weight = nn.Parameter(0.05 * torch.randn(n_in, dim_in, n_out * dim_out))

    def forward(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """u (B, n_in, dim_in) → (v (B, n_out, dim_out), coupling c (B, n_in, n_out))."""
        b = u.shape[0]
        # predictions, one batched matmul per input capsule: (n_in, B, d_in) @ (n_in, d_in, o·d)
        u_hat = torch.bmm(u.transpose(0, 1), self.weight)  # (n_in, B, n_out·d_out)
        # (B·n_out, n_in, d_out): both routing contractions become batched matmuls
        u_hat = u_hat.view(self.n_in, b, self.n_out, self.dim_out).permute(1, 2, 0, 3)
        u_hat = u_hat.reshape(b * self.n_out, self.n_in, self.dim_out)
        logits = torch.zeros(b * self.n_out, 1, self.n_in, device=u.device, dtype=u.dtype)
        for it in range(self.iterations):
            c = logits.view(b, self.n_out, self.n_in).softmax(dim=1).view_as(logits)
            v = squash(torch.bmm(c, u_hat))  # (B·n_out, 1, d_out)
            if it < self.iterations - 1:
                logits = logits + torch.bmm(v, u_hat.transpose(1, 2))  # agreement u_hat · v
        coupling = c.view(b, self.n_out, self.n_in).transpose(1, 2)
        return v.view(b, self.n_out, self.dim_out), coupling

    def forward_time_major(self, u: Tensor) -> Tensor:
        """Routing on capsules ``(n_in, dim_in, N)`` (samples innermost) → class capsules
        ``(n_out, dim_out, N)``; the same computation as :meth:`forward`, without couplings."""
        n = u.shape[-1]
        u_hat = torch.matmul(self.weight.transpose(1, 2), u)  # (n_in, n_out·d_out, N)
        u_hat = u_hat.view(self.n_in, self.n_out, self.dim_out, n)
        logits: Tensor | None = None
        for it in range(self.iterations):  # sums as in-place multiply-adds: no big temporaries
            if logits is None:  # softmax of zero logits: uniform couplings
                s = u_hat.sum(dim=0).div_(self.n_out)
            else:
                c = logits.softmax(dim=1).unsqueeze(2)  # (n_in, n_out, 1, N)
                s = u_hat[0] * c[0]
                for i in range(1, self.n_in):
                    s.addcmul_(u_hat[i], c[i])
            v = squash(s, dim=1)  # (n_out, d_out, N)
            if it < self.iterations - 1:  # agreement u_hat · v: (n_in, n_out, N)
                agree = u_hat[:, :, 0] * v[:, 0]
                for d in range(1, self.dim_out):
                    agree.addcmul_(u_hat[:, :, d], v[:, d])
                logits = agree if logits is None else logits.add_(agree)
        return v


def margin_loss(
    lengths: Tensor,
    target: Tensor,
    *,
    m_pos: float = 0.9,
    m_neg: float = 0.1,
    lam: float = 0.5,
    weight: Tensor | None = None,
) -> Tensor:
    """Σ_k T_k max(0, m⁺ − ‖v_k‖)² + λ (1 − T_k) max(0, ‖v_k‖ − m⁻)², mean over the batch.

    ``weight`` (n_classes,) weights each sample by its true class (class imbalance).
    """
    t = F.one_hot(target, lengths.shape[1]).to(lengths.dtype)
    per = t * F.relu(m_pos - lengths) ** 2 + lam * (1 - t) * F.relu(lengths - m_neg) ** 2
    per = per.sum(dim=1)
    if weight is not None:
        w = weight[target]
        return (per * w).sum() / w.sum()
    return per.mean()
