"""Convolution-operator library: temporal mixers ``(B, C, L) -> (B, C, L)`` and spatial
mixers ``(B, C, H, W) -> (B, C, H, W)`` behind one registry.

>>> from agrostress.ops import create_op, list_ops
>>> op = create_op("fourier", channels=64, length=29)      # FFC-style Fourier unit
>>> sorted(list_ops(dims=2))[:3]
['aff', 'convnext', 'cp_conv']

Every operator module registers itself on import; see ``docs/ops.md`` for the papers,
execution paths and benchmark figures.
"""

from . import (  # noqa: F401  (imports register the operators)
    aff,
    convnext,
    cp_conv,
    dcls,
    dilated_reparam,
    dwconv,
    fdconv,
    fourier,
    hyperzzw,
    inception_dw,
    linear_attention,
    lka,
    local_attention,
    long_conv,
    lsconv,
    sgconv,
    spartan,
    weighted_conv,
)
from ._common import DENSE_MAX_LEN, optim_param_groups, reparameterize_model
from .dcls import register_clamp_hook
from .fourier import FourierConv, FourierConv1d, FourierConv2d, fourier_reference
from .orthogonality import conv_orthogonality, orthogonality_loss
from .registry import OpSpec, create_op, get_op, list_ops, register_op

__all__ = [
    "DENSE_MAX_LEN",
    "FourierConv",
    "FourierConv1d",
    "FourierConv2d",
    "OpSpec",
    "conv_orthogonality",
    "create_op",
    "fourier_reference",
    "get_op",
    "list_ops",
    "optim_param_groups",
    "orthogonality_loss",
    "register_clamp_hook",
    "register_op",
    "reparameterize_model",
]
