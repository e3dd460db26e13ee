"""Contract of every registered operator: shape/dtype, gradients, batch independence."""

from __future__ import annotations

import pytest
import torch

from tests.ops.ops_helpers import ALL_OPS, make, randomize_bn, sample

IDS = [f"{n}-{d}d" for n, d in ALL_OPS]


@pytest.mark.parametrize(("name", "dims"), ALL_OPS, ids=IDS)
@pytest.mark.parametrize("channels", [8, 16])
def test_shape_and_dtype(name: str, dims: int, channels: int) -> None:
    lengths = (4, 13, 29) if dims == 1 else (None,)
    for length in lengths:
        op = make(name, dims, channels=channels, length=length or 12)
        x = sample(dims, channels=channels, length=length or 12)
        for train in (True, False):
            op.train(train)
            y = op(x)
            assert y.shape == x.shape and y.dtype == x.dtype
            assert torch.isfinite(y).all()


@pytest.mark.parametrize(("name", "dims"), ALL_OPS, ids=IDS)
def test_float64(name: str, dims: int) -> None:
    op = make(name, dims).double().eval()
    x = sample(dims, dtype=torch.float64)
    y = op(x)
    assert y.dtype == torch.float64 and y.shape == x.shape


# FDConv's frequency bands: on a 5 x 6 image the (4, 8) bands hold only the DC bin, so their
# modulation maps get exactly zero gradient; one band is enough to check the wiring.
GRAD_KW = {"fdconv": {"k_list": (2,)}}


@pytest.mark.parametrize(("name", "dims"), ALL_OPS, ids=IDS)
def test_gradients_reach_every_parameter(name: str, dims: int) -> None:
    op = make(name, dims, channels=32, **GRAD_KW.get(name, {})).train()
    with torch.no_grad():  # SpaRTAN's squeeze-excitation has C/8 hidden ReLU units whose
        for mname, m in op.named_modules():  # input is nearly the same for every sample:
            if mname.endswith("attn.squeeze"):  # open them so the test checks the wiring
                m.bias.fill_(1.0)
    x = sample(dims, batch=4, channels=32).requires_grad_()
    y = op(x)
    (y * torch.randn_like(y)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for pname, p in op.named_parameters():
        if not p.requires_grad:
            continue
        assert p.grad is not None, f"{name}: no gradient for {pname}"
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"{name}: zero gradient for {pname}"


@pytest.mark.parametrize(("name", "dims"), ALL_OPS, ids=IDS)
def test_eval_output_independent_of_batch_composition(name: str, dims: int) -> None:
    op = make(name, dims)
    randomize_bn(op)
    op.eval()
    x = sample(dims, batch=4)
    with torch.no_grad():
        full = op(x)
        alone = op(x[1:2])
        mixed = op(torch.cat([sample(dims, batch=5) * 3, x[1:2]]))[-1:]
    torch.testing.assert_close(alone, full[1:2], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(mixed, full[1:2], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("name", "dims"), ALL_OPS, ids=IDS)
def test_state_dict_roundtrip(name: str, dims: int) -> None:
    op = make(name, dims).eval()
    clone = make(name, dims).eval()
    clone.load_state_dict(op.state_dict())
    x = sample(dims)
    with torch.no_grad():
        torch.testing.assert_close(clone(x), op(x))
