"""Registry: names, dims, constructor convention, documentation."""

from __future__ import annotations

import inspect

import pytest
from torch import nn

from agrostress.ops import create_op, get_op, list_ops, register_op

REQUIRED = {
    "fourier",
    "dilated_reparam",
    "inception_dw",
    "sgconv",
    "long_conv",
    "lka",
    "convnext",
    "dcls",
    "weighted_conv",
    "aff",
    "cp_conv",
    "lsconv",
    "fdconv",
    "spartan",
    "hyperzzw",
    "local_attention",
    "linear_attention",
}


def test_required_ops_registered_and_sorted() -> None:
    names = list_ops()
    assert set(names) >= REQUIRED
    assert names == sorted(names)


def test_dims_filter() -> None:
    one, two = set(list_ops(dims=1)), set(list_ops(dims=2))
    assert "fdconv" in two and "fdconv" not in one
    assert {"sgconv", "long_conv"} <= one - two
    assert REQUIRED - {"fdconv"} <= one
    # 2-D where the paper is 2-D
    assert {
        "fourier",
        "dilated_reparam",
        "inception_dw",
        "lka",
        "convnext",
        "dcls",
        "weighted_conv",
        "aff",
        "cp_conv",
        "lsconv",
        "spartan",
        "local_attention",
        "linear_attention",
    } <= two


def test_create_op_errors() -> None:
    with pytest.raises(KeyError, match="unknown operator"):
        create_op("nope", channels=8)
    with pytest.raises(ValueError, match="supports dims"):
        create_op("fdconv", channels=8, dims=1)
    with pytest.raises(ValueError, match="needs length"):
        create_op("sgconv", channels=8)


def test_duplicate_registration_rejected() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_op("fourier")(type("Other", (nn.Module,), {}))


@pytest.mark.parametrize("name", sorted(REQUIRED | {"dwconv"}))
def test_every_op_documents_its_paper(name: str) -> None:
    factory = get_op(name).factory
    module_doc = inspect.getmodule(factory).__doc__ or ""
    assert len(module_doc) > 200 and len(factory.__doc__ or "") > 20
    # a paper (or the explicit "not a paper operator") is named with its venue/year
    assert any(tok in module_doc for tok in ("20", "Not a paper")), name


def test_reparameterisable_ops_expose_deploy() -> None:
    for name in ("dilated_reparam", "weighted_conv", "hyperzzw", "dcls"):
        op = create_op(name, channels=8, length=12)
        assert callable(op.reparameterize) and callable(op.deploy)
