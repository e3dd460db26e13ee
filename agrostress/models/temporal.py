"""Temporal baselines of the zoo: TempCNN, a small Transformer (L-TAE-style pooling),
InceptionTime, and a generic mixer backbone with any temporal operator of ``agrostress.ops``."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from agrostress.models.base import StressModel
from agrostress.models.registry import register_model
from agrostress.ops import create_op, list_ops


@register_model("tempcnn")
class TempCNN(StressModel):
    """TempCNN (Pelletier et al. 2019): 3 × [conv k5, BN, ReLU, dropout] → dense 256 → softmax."""

    def __init__(self, n_features: int, n_steps: int, n_classes: int = 3, hidden: int = 64,
                 kernel_size: int = 5, fc: int = 256, dropout: float = 0.2):
        super().__init__()
        layers: list[nn.Module] = []
        c = n_features
        for _ in range(3):
            layers += [nn.Conv1d(c, hidden, kernel_size, padding=kernel_size // 2),
                       nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(dropout)]
            c = hidden
        self.conv = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(hidden * n_steps, fc), nn.BatchNorm1d(fc), nn.ReLU(),
            nn.Dropout(dropout), nn.Linear(fc, n_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.conv(x.transpose(1, 2)))


class _Positional(nn.Module):
    def __init__(self, d: int, n_steps: int):
        super().__init__()
        pos = torch.arange(n_steps, dtype=torch.float32)[:, None]
        div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(1000.0) / d))
        pe = torch.zeros(n_steps, d)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div[: d // 2])
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.pe


@register_model("transformer")
class TemporalTransformer(StressModel):
    """Transformer encoder over time with a learned master-query attention pooling (L-TAE)."""

    def __init__(self, n_features: int, n_steps: int, n_classes: int = 3, d_model: int = 64,
                 heads: int = 4, layers: int = 2, dropout: float = 0.1):
        super().__init__()
        self.inp = nn.Sequential(nn.Linear(n_features, d_model), nn.LayerNorm(d_model))
        self.pos = _Positional(d_model, n_steps)
        layer = nn.TransformerEncoderLayer(d_model, heads, 2 * d_model, dropout, batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.query = nn.Parameter(torch.randn(1, 1, d_model) * 0.02)
        self.pool = nn.MultiheadAttention(d_model, heads, batch_first=True)
        self.head = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, n_classes))

    def forward(self, x: Tensor) -> Tensor:
        h = self.encoder(self.pos(self.inp(x)))
        q = self.query.expand(h.shape[0], -1, -1)
        pooled, _ = self.pool(q, h, h, need_weights=False)
        return self.head(pooled[:, 0])


class _Inception(nn.Module):
    def __init__(self, c_in: int, filters: int, kernels: tuple[int, ...], bottleneck: int):
        super().__init__()
        self.bottleneck = nn.Conv1d(c_in, bottleneck, 1, bias=False) if c_in > 1 else nn.Identity()
        b = bottleneck if c_in > 1 else c_in
        self.convs = nn.ModuleList(nn.Conv1d(b, filters, k, padding=k // 2, bias=False)
                                   for k in kernels)
        self.pool = nn.Sequential(nn.MaxPool1d(3, 1, 1), nn.Conv1d(c_in, filters, 1, bias=False))
        self.bn = nn.BatchNorm1d(filters * (len(kernels) + 1))

    def forward(self, x: Tensor) -> Tensor:
        z = self.bottleneck(x)
        out = torch.cat([c(z) for c in self.convs] + [self.pool(x)], dim=1)
        return torch.relu(self.bn(out))


@register_model("inceptiontime")
class InceptionTime(StressModel):
    """InceptionTime (Fawaz et al. 2020): inception modules with a residual every 3, GAP."""

    def __init__(self, n_features: int, n_steps: int, n_classes: int = 3, filters: int = 16,
                 depth: int = 6, kernels: tuple[int, ...] = (9, 19, 39), bottleneck: int = 16):
        super().__init__()
        kernels = tuple(min(k, 2 * (n_steps // 2) + 1) for k in kernels)
        width = filters * (len(kernels) + 1)
        self.blocks = nn.ModuleList()
        self.shortcuts = nn.ModuleList()
        c = n_features
        res_in = n_features
        for i in range(depth):
            self.blocks.append(_Inception(c, filters, kernels, bottleneck))
            c = width
            if i % 3 == 2:
                self.shortcuts.append(nn.Sequential(nn.Conv1d(res_in, width, 1, bias=False),
                                                    nn.BatchNorm1d(width)))
                res_in = width
        self.head = nn.Linear(width, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = x.transpose(1, 2)
        res = h
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i % 3 == 2:
                h = torch.relu(h + self.shortcuts[i // 3](res))
                res = h
        return self.head(h.mean(dim=-1))


class MixerNet(StressModel):
    """Generic temporal backbone: stem → depth × [x + op(norm x); x + MLP(norm x)] → GAP → head.

    ``op`` is any 1-D operator name from ``agrostress.ops`` (one zoo entry per operator).
    """

    def __init__(self, n_features: int, n_steps: int, n_classes: int = 3, op: str = "dwconv",
                 channels: int = 32, depth: int = 2, expansion: int = 2, dropout: float = 0.1,
                 **op_kwargs):
        super().__init__()
        self.stem = nn.Conv1d(n_features, channels, 1)
        self.norms1 = nn.ModuleList(nn.GroupNorm(1, channels) for _ in range(depth))
        self.mixers = nn.ModuleList(
            create_op(op, channels=channels, length=n_steps, **op_kwargs) for _ in range(depth)
        )
        self.norms2 = nn.ModuleList(nn.GroupNorm(1, channels) for _ in range(depth))
        self.mlps = nn.ModuleList(
            nn.Sequential(nn.Conv1d(channels, expansion * channels, 1), nn.GELU(),
                          nn.Conv1d(expansion * channels, channels, 1))
            for _ in range(depth)
        )
        self.drop = nn.Dropout(dropout)
        self.head = nn.Sequential(nn.LayerNorm(channels), nn.Linear(channels, n_classes))

    def features(self, x: Tensor) -> Tensor:
        h = self.stem(x.transpose(1, 2))
        for n1, mix, n2, mlp in zip(self.norms1, self.mixers, self.norms2, self.mlps, strict=True):
            h = h + self.drop(mix(n1(h)))
            h = h + self.drop(mlp(n2(h)))
        return h.mean(dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def _mixer_factory(op_name: str):
    def build(**kw):
        return MixerNet(op=op_name, **kw)

    build.__doc__ = f"MixerNet with the ``{op_name}`` temporal operator."
    return build


for _op in list_ops(dims=1):
    register_model(f"mixer_{_op}")(_mixer_factory(_op))
