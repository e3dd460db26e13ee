"""FFDNN (Shi, Han et al. 2023): photochemical-filter series → Fourier convolution blocks →
capsule feature encoder → class capsules whose lengths are the class scores.

Trained with the margin loss (m⁺ 0.9, m⁻ 0.1, λ 0.5) plus, by default, a cross-entropy head on
the class-capsule vectors for calibrated probabilities (``ce_weight``; 0 disables the head and
the logits become log-normalised capsule lengths).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from agrostress.models.base import StressModel
from agrostress.models.capsules import PrimaryCapsules, RoutingCapsules, margin_loss
from agrostress.models.registry import register_model
from agrostress.ops import create_op


class FourierBlock(nn.Module):
    """Residual Fourier convolution unit: x + drop(FFC(x))."""

    def __init__(self, channels: int, length: int, ratio_global: float, path: str, dropout: float):
        super().__init__()
        self.ffc = create_op("fourier", channels=channels, length=length,
                             ratio_global=ratio_global, path=path)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.drop(self.ffc(x))


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
    ):
        super().__init__()
        self.n_classes, self.ce_weight = n_classes, ce_weight
        self.stem = nn.Sequential(
            nn.Conv1d(n_features, channels, kernel_size=1), nn.BatchNorm1d(channels), nn.GELU()
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

    def capsules(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, T, F) → class capsules (B, n_classes, class_dim) and routing couplings."""
        h = self.blocks(self.stem(x.transpose(1, 2)))
        return self.routing(self.primary(h))

    def _logits(self, v: Tensor) -> Tensor:
        if self.ce_head is not None:
            return self.ce_head(v.flatten(1))
        lengths = v.norm(dim=-1)
        return torch.log(lengths / lengths.sum(dim=1, keepdim=True) + 1e-9)

    def forward(self, x: Tensor) -> Tensor:
        v, _ = self.capsules(x)
        return self._logits(v)

    def training_loss(self, x: Tensor, y: Tensor, class_weight: Tensor | None = None) -> Tensor:
        v, _ = self.capsules(x)
        loss = margin_loss(v.norm(dim=-1), y, weight=class_weight)
        if self.ce_head is not None:
            loss = loss + self.ce_weight * F.cross_entropy(self._logits(v), y, weight=class_weight)
        return loss
