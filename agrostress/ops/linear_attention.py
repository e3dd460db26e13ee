"""Normalised linear attention (TransNormer's NormAttention; Qin et al., "The Devil in Linear
Transformer", EMNLP 2022 — the seeds' SOFT / TransNormer family of softmax-free attention).

Multi-head attention without softmax: queries and keys pass a positive feature map
``φ(x) = 1 + elu(x)``, and each head computes ``φ(Q) (φ(K)ᵀ V)`` — linear in the number of
tokens. Instead of the usual ``1 / (φ(Q) Σ φ(K))`` scaling, whose unbounded gradients the
paper identifies as the cause of unstable training, the head outputs are normalised (a
LayerNorm over the channels) before the output projection. Bidirectional (every token sees
every token); 1-D sequences or 2-D images (tokens flattened).

Two forms of the same function: ``path="linear"`` contracts ``φ(K)ᵀ V`` first (O(N·d²)), the
reference ``path="dense"`` materialises the ``N × N`` similarity matrix (O(N²·d), cheaper for
the few dozen dates of a season).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ._common import head_count, merge_heads, qkv_heads
from .registry import register_op

__all__ = ["LinearAttention"]


def feature_map(x: Tensor) -> Tensor:
    """φ(x) = 1 + elu(x): positive, so the implicit attention weights are non-negative."""
    return F.elu(x) + 1.0


@register_op("linear_attention", dims=(1, 2))
class LinearAttention(nn.Module):
    """Softmax-free multi-head attention with output normalisation."""

    def __init__(
        self,
        channels: int,
        length: int | None = None,
        dims: int = 1,
        heads: int | None = None,
        path: str = "auto",
        qkv_bias: bool = True,
    ) -> None:
        super().__init__()
        if path not in ("auto", "linear", "dense"):
            raise ValueError(f"path must be auto, linear or dense, got {path!r}")
        self.dims, self.heads, self.path = dims, head_count(channels, heads), path
        self.qkv = nn.Linear(channels, 3 * channels, bias=qkv_bias)
        self.norm = nn.LayerNorm(channels)
        self.proj = nn.Linear(channels, channels)

    def _path(self, n_tokens: int, head_dim: int) -> str:
        if self.path != "auto":
            return self.path
        return "dense" if n_tokens <= 2 * head_dim else "linear"

    def attend(self, q: Tensor, k: Tensor, v: Tensor, path: str) -> Tensor:
        """Heads ``(B, h, N, d)`` → ``(B, h, N, d)``: ``φ(Q) (φ(K)ᵀ V)``."""
        q, k = feature_map(q), feature_map(k)
        if path == "dense":
            return (q @ k.transpose(-1, -2)) @ v
        return q @ (k.transpose(-1, -2) @ v)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = qkv_heads(x, self.qkv, self.heads)
        o = self.attend(q, k, v, self._path(q.shape[2], q.shape[3]))
        return merge_heads(o, x, lambda t: self.proj(self.norm(t)))
