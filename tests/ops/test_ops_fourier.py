"""The Fourier convolution unit: dense and fft paths, the naive FFC definition, padding."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from agrostress.ops import (
    DENSE_MAX_LEN,
    FourierConv,
    FourierConv1d,
    FourierConv2d,
    create_op,
    fourier_reference,
)
from agrostress.ops._common import irfft_real, rdft_matrices, rfft_real
from tests.ops.ops_helpers import randomize_bn, rel_err

LENGTHS = [4, 7, 12, 13, 16, 29, 31, 32, 64, 97]  # odd, prime, powers of two


def _paths(m: FourierConv1d, x: torch.Tensor) -> dict[str, torch.Tensor]:
    out = {}
    for path in ("dense", "fft"):
        m.path = path
        out[path] = m(x)
    out["naive"] = fourier_reference(m, x)
    return out


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("padding", ["circular", "linear"])
def test_dense_and_fft_paths_agree(length: int, padding: str) -> None:
    m = FourierConv1d(16, padding=padding)
    randomize_bn(m)
    x = torch.randn(6, 16, length)
    for train in (True, False):
        m.train(train)
        out = _paths(m, x)
        assert rel_err(out["dense"], out["fft"]) <= 1e-5
        assert rel_err(out["dense"], out["naive"]) <= 1e-5
        assert rel_err(out["fft"], out["naive"]) <= 1e-5


@pytest.mark.parametrize(("channels", "ratio"), [(8, 0.5), (9, 0.75), (6, 1.0), (16, 0.25)])
def test_channel_splits_match_definition(channels: int, ratio: float) -> None:
    m = FourierConv1d(channels, ratio_global=ratio, kernel_size=5)
    randomize_bn(m)
    x = torch.randn(5, channels, 21)
    for train in (True, False):
        m.train(train)
        out = _paths(m, x)
        assert rel_err(out["dense"], out["naive"]) <= 1e-5
        assert rel_err(out["fft"], out["naive"]) <= 1e-5


def test_training_updates_batchnorm_like_the_reference() -> None:
    fast, ref = FourierConv1d(8), FourierConv1d(8)
    ref.load_state_dict(fast.state_dict())
    x = torch.randn(7, 8, 29)
    fast.train()(x)
    fourier_reference(ref.train(), x)
    for (name, a), b in zip(fast.state_dict().items(), ref.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=name)


@pytest.mark.parametrize("length", [5, 12, 29])
@pytest.mark.parametrize("n_fft", ["same", "double"])
def test_rdft_matrices_match_torch_fft(length: int, n_fft: str) -> None:
    n = length if n_fft == "same" else 2 * length
    x = torch.randn(3, 4, length, dtype=torch.float64)
    ref = torch.fft.rfft(x, n=n, norm="ortho")
    z = rfft_real(x, n, "dense")
    torch.testing.assert_close(z[..., 0, :], ref.real)
    torch.testing.assert_close(z[..., 1, :], ref.imag)
    # arbitrary spectra, including imaginary parts at DC / Nyquist that C2R ignores
    spec = torch.randn(3, 4, 2, n // 2 + 1, dtype=torch.float64)
    want = torch.fft.irfft(torch.complex(spec[..., 0, :], spec[..., 1, :]), n=n, norm="ortho")
    torch.testing.assert_close(irfft_real(spec, length, n, "dense"), want[..., :length])
    fwd2, inv2 = rdft_matrices(length, n, x.device, x.dtype)
    assert fwd2.shape == (length, 2 * (n // 2 + 1)) and inv2.shape == (2 * (n // 2 + 1), length)
    assert fwd2.dtype == torch.float64


def test_auto_path_by_length_and_forcing() -> None:
    m = FourierConv1d(8)
    cpu = torch.device("cpu")
    limit = DENSE_MAX_LEN["dft"]["cpu"]
    assert m.resolve(limit, cpu) == "dense"
    assert m.resolve(limit + 1, cpu) == "fft"
    assert m.resolve(29, cpu) == "dense"  # the product's typical series
    assert FourierConv1d(8, padding="linear").resolve(limit, cpu) == "dense"
    assert FourierConv1d(8, path="fft").resolve(12, cpu) == "fft"
    assert FourierConv1d(8, path="dense").resolve(4096, cpu) == "dense"
    with pytest.raises(ValueError):
        FourierConv1d(8, path="magic")
    with pytest.raises(NotImplementedError):
        FourierConv2d(8, path="dense")


def test_padding_modes_differ_and_linear_has_no_wraparound() -> None:
    """With linear padding the spectral branch sees zeros beyond the series, so an impulse at
    the last date cannot reach the first dates through the spectrum via wrap-around: compare
    with an explicitly zero-padded circular unit on a 2L series."""
    x = torch.randn(2, 8, 13)
    lin = FourierConv1d(8, padding="linear", ratio_global=1.0, act=None).eval()
    circ2 = FourierConv1d(8, padding="circular", ratio_global=1.0, act=None).eval()
    circ2.load_state_dict(lin.state_dict())
    circ = FourierConv1d(8, padding="circular", ratio_global=1.0, act=None).eval()
    circ.load_state_dict(lin.state_dict())
    # ratio 1 and 1x1 spectral convs: the unit is pointwise in time apart from the FU, so
    # running the circular unit on the zero-padded series and cropping is the linear unit
    padded = F.pad(x, (0, 13))
    torch.testing.assert_close(lin(x), circ2(padded)[..., :13], rtol=1e-4, atol=1e-5)
    assert rel_err(lin(x), circ(x)) > 1e-3


def test_half_precision_uses_dense_path() -> None:
    m = FourierConv1d(8).eval()
    x = torch.randn(4, 8, 29)
    ref = m(x)
    m16 = FourierConv1d(8).eval()
    m16.load_state_dict(m.state_dict())
    m16 = m16.to(torch.bfloat16)
    m16.path = "fft"  # falls back to the dense path for half precision
    y = m16(x.to(torch.bfloat16))
    assert y.dtype == torch.bfloat16
    assert rel_err(y.float(), ref) < 5e-2


def _reference_2d(m: FourierConv2d, x: torch.Tensor) -> torch.Tensor:
    cl, pad = m.c_l, m.kernel_size // 2
    xl, xg = x[:, :cl], x[:, cl:]
    s = torch.relu(m.bn_in(F.conv2d(xg, m.w_in[..., None, None])))
    b, h, hh, ww = s.shape
    ff = torch.fft.rfftn(s, dim=(-2, -1), norm="ortho")
    ff = torch.stack((ff.real, ff.imag), dim=-1).permute(0, 1, 4, 2, 3).reshape(b, 2 * h, hh, -1)
    ff = torch.relu(m.bn_spec(F.conv2d(ff, m.w_spec[..., None, None])))
    ff = ff.view(b, h, 2, hh, -1).permute(0, 1, 3, 4, 2).contiguous()
    fu = torch.fft.irfftn(
        torch.complex(ff[..., 0], ff[..., 1]), s=(hh, ww), dim=(-2, -1), norm="ortho"
    )
    g = F.conv2d(s + fu, m.w_out[..., None, None])
    out_l = F.conv2d(xl, m.w_l2l, padding=pad) + F.conv2d(xg, m.w_g2l, padding=pad)
    out_g = F.conv2d(xl, m.w_l2g, padding=pad) + g
    return m.act(m.bn_out(torch.cat([out_l, out_g], 1)))


def test_fourier_2d_matches_ffc_definition() -> None:
    m = FourierConv2d(8)
    randomize_bn(m)
    x = torch.randn(3, 8, 7, 10)
    for train in (True, False):
        m.train(train)
        assert rel_err(m(x), _reference_2d(m, x)) <= 1e-5


def test_registry_builds_fourier_unit() -> None:
    op = create_op("fourier", channels=64, length=29)
    assert isinstance(op, FourierConv)
    assert op.c_g == 32 and op.c_l == 32 and op.hidden == 16


@pytest.mark.parametrize("length", [7, 29, 64])
@pytest.mark.parametrize(("ratio", "path"), [(0.5, "dense"), (0.5, "fft"), (1.0, "dense"),
                                             (0.25, "fft")])
def test_no_grad_inference_matches_definition(length: int, ratio: float, path: str) -> None:
    """Eval mode without gradients (BatchNorm folded) equals the FFC definition."""
    m = FourierConv1d(12, ratio_global=ratio, path=path).eval()
    randomize_bn(m)
    x = torch.randn(41, 12, length)
    with torch.no_grad():
        fast = m(x)
        ref = fourier_reference(m, x)
    assert not fast.requires_grad
    assert rel_err(fast, ref) <= 1e-5
    assert rel_err(m(x).detach(), fast) <= 1e-5  # the autograd path computes the same function
    with torch.no_grad():
        one = torch.cat([m(x[i : i + 1]) for i in range(len(x))])
    assert rel_err(one, fast) <= 1e-6  # no dependence on the batch composition


@pytest.mark.parametrize("length", [3, 12, 29, 31])
@pytest.mark.parametrize(("ratio", "path", "padding", "k"), [
    (0.5, "dense", "circular", 3), (0.5, "fft", "linear", 5), (1.0, "dense", "linear", 3),
    (0.25, "fft", "circular", 7), (0.75, "dense", "circular", 5)])
def test_time_major_form_matches_definition(
    length: int, ratio: float, path: str, padding: str, k: int
) -> None:
    """``forward_time_major`` on (L, C, N) computes the FFC definition (kernels longer than
    the series included)."""
    m = FourierConv1d(12, ratio_global=ratio, path=path, padding=padding, kernel_size=k).eval()
    randomize_bn(m)
    x = torch.randn(9, 12, length)
    with torch.no_grad():
        tm = m.forward_time_major(x.permute(2, 1, 0).contiguous()).permute(2, 1, 0)
        ref = fourier_reference(m, x)
    assert rel_err(tm, ref) <= 1e-5
    with pytest.raises(RuntimeError, match="eval-mode"):
        m.train().forward_time_major(x.permute(2, 1, 0))
