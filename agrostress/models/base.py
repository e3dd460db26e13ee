"""What every torch model of the zoo shares: the loss hook and the context size."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class StressModel(nn.Module):
    """Base class: ``forward(x) -> logits``; ``training_loss`` may add model-specific terms."""

    context: int = 0  # spatial radius in pixels (0 = pixel model)

    def training_loss(self, x: Tensor, y: Tensor, class_weight: Tensor | None = None) -> Tensor:
        return F.cross_entropy(self(x), y, weight=class_weight)
