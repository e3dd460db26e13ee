"""FFDNN's time-major inference path (eval, no gradients, CPU) against the channels-first
path the model trains with: same logits for series, patches and whole images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agrostress.models import create_model
from agrostress.models.capsules import PrimaryCapsules, RoutingCapsules, pool_matrix
from agrostress.models.ffdnn import FFDNN
from agrostress.models.neighbourhood import neighbourhood_rows, neighbourhood_torch
from agrostress.training.data import patches
from tests.bn_helpers import randomize_bn


def _model(**kw) -> FFDNN:
    torch.manual_seed(0)
    cfg = {"n_features": 3, "n_steps": 13, "channels": 8, "primary_types": 3, "class_dim": 4}
    cfg.update(kw)
    m = create_model("ffdnn", **cfg).eval()
    randomize_bn(m)
    return m


def _channels_first(m: FFDNN, fn, *args) -> torch.Tensor:
    """The training-form path: eval mode with gradients enabled (no time-major path)."""
    with torch.enable_grad():
        return fn(*args).detach()


CONFIGS = [
    {},
    {"ce_weight": 0.0},
    {"fourier_path": "fft", "n_steps": 29},
    {"ratio_global": 1.0, "depth": 1, "n_steps": 7},
    {"positions": 3, "routing_iterations": 1, "n_steps": 12},
]


@pytest.mark.parametrize("cfg", CONFIGS)
def test_series_logits_equal_channels_first(cfg: dict) -> None:
    m = _model(**cfg)
    x = torch.randn(37, cfg.get("n_steps", 13), 3)
    m.time_major_chunk = 16  # several chunks and a ragged last one
    with torch.no_grad():
        assert m.uses_time_major(x)
        fast = m(x)
    ref = _channels_first(m, m, x)
    torch.testing.assert_close(fast, ref, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("size", [(9, 11), (2, 3), (1, 1), (16, 5)])
@pytest.mark.parametrize("context", [0, 2])
def test_image_path_equals_channels_first_and_patches(size: tuple[int, int], context: int) -> None:
    m = _model(context=context)
    h, w = size
    img = torch.randn(1, 13, 3, h, w)
    m.time_major_chunk = 2 * w  # row blocks of two rows
    with torch.no_grad():
        fast = m.forward_image(img)
    ref = _channels_first(m, m.forward_image, img)
    assert fast.shape == (1, 3, h, w)
    torch.testing.assert_close(fast, ref, atol=2e-5, rtol=1e-5)
    if context:  # and equal to the patch path, border pixels included
        rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        pt = torch.from_numpy(patches(img[0].numpy(), rows.ravel(), cols.ravel(), context))
        with torch.no_grad():
            by_patch = m(pt)
        torch.testing.assert_close(by_patch, fast[0].reshape(3, -1).T, atol=2e-5, rtol=1e-5)


def test_float64_image_uses_the_torch_neighbourhood() -> None:
    m = _model(context=1).double()
    img = torch.randn(1, 13, 3, 6, 7, dtype=torch.float64)
    with torch.no_grad():
        fast = m.forward_image(img)
    assert fast.dtype == torch.float64
    torch.testing.assert_close(fast, _channels_first(m, m.forward_image, img))


def test_time_major_only_for_float_inference() -> None:
    m = _model()
    x = torch.randn(4, 13, 3)
    assert not m.uses_time_major(x)  # gradients enabled
    with torch.no_grad():
        assert m.uses_time_major(x)
        assert not m.uses_time_major(x.half())
        m.train()
        assert not m.uses_time_major(x)


def test_pixels_do_not_depend_on_their_chunk() -> None:
    """Bit for bit: a pixel's logits do not depend on how many pixels share its pass (tiled
    maps must equal a single pass exactly)."""
    m = _model(context=2)
    img = torch.randn(1, 13, 3, 40, 50)
    with torch.no_grad():
        m.time_major_chunk = 10_000
        whole = m.forward_image(img)
        for chunk in (50, 150, 700):
            m.time_major_chunk = chunk
            assert torch.equal(m.forward_image(img), whole), chunk
        series = torch.randn(300, 13, 3, 5, 5)
        m.time_major_chunk = 1024
        ref = m(series)
        for lo, hi in [(0, 1), (3, 20), (17, 64), (100, 233), (0, 300)]:
            assert torch.equal(m(series[lo:hi]), ref[lo:hi]), (lo, hi)
        crop = m.forward_image(img[..., 2:5, :])  # a crop is an image with its own border
    assert not torch.allclose(crop, whole[..., 2:5, :], atol=1e-4)


@pytest.mark.parametrize(("shape", "r"), [((6, 9, 11), 2), ((4, 2, 3), 2), ((2, 1, 5), 2),
                                          ((4, 6, 7), 1), ((2, 5, 5), 3)])
def test_neighbourhood_kernel_matches_numpy_reflect(shape: tuple[int, int, int], r: int) -> None:
    planes, h, w = shape
    img = torch.randn(planes, h, w)
    padded = np.pad(img.numpy(), ((0, 0), (r, r), (r, r)), mode="reflect")
    win = np.lib.stride_tricks.sliding_window_view(padded, (2 * r + 1, 2 * r + 1), axis=(1, 2))
    mean = win.mean(axis=(-2, -1))
    std = np.sqrt(np.maximum((win.astype(np.float64) ** 2).mean(axis=(-2, -1)) - mean**2, 0))
    ref = np.concatenate([a.reshape(2, planes // 2, h, w) for a in (img.numpy(), mean, std)], 1)
    for y0, ny in [(0, h), (h // 2, h - h // 2)]:
        for fn in (neighbourhood_rows, neighbourhood_torch):
            out = fn(img, 2, y0, ny, r)
            assert out.shape == (2, 3 * planes // 2, ny, w)
            np.testing.assert_allclose(out.numpy(), ref[:, :, y0 : y0 + ny], atol=2e-6)


def test_capsules_time_major_equal_batch_major() -> None:
    torch.manual_seed(0)
    for length, positions in [(5, 1), (12, 5), (29, 4), (30, 7)]:
        x = torch.randn(3, 2, length)
        pooled = x @ pool_matrix(length, positions, x.device, x.dtype).T
        torch.testing.assert_close(pooled, torch.nn.functional.adaptive_avg_pool1d(x, positions))
    primary, routing = PrimaryCapsules(10, 3, 4, 4), RoutingCapsules(12, 4, 3, 5, 3)
    x = torch.randn(6, 10, 17)
    with torch.no_grad():
        u = primary(x)
        v, _ = routing(u)
        u_tm = primary.forward_time_major(x.permute(2, 1, 0).contiguous())
        v_tm = routing.forward_time_major(u_tm)
    torch.testing.assert_close(u_tm.permute(2, 0, 1), u)
    torch.testing.assert_close(v_tm.permute(2, 0, 1), v)


def test_image_normalisation_in_torch_equals_numpy() -> None:
    """``normalise_image`` (torch, in the image's layout) equals the card's numpy
    normalisation, clipping and non-finite values included."""
    from pathlib import Path

    from agrostress.models import load

    shipped = load(Path(__file__).resolve().parents[2] / "models" / "ffdnn")
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((29, 17, 6, 7)) * 500).astype(np.float32)
    x[0, 0, 0, :5] = [np.nan, np.inf, -np.inf, 1e9, -1e9]
    got = shipped.normalise_image(x).numpy()
    want = np.moveaxis(shipped.normalise(np.moveaxis(x, 1, -1)), -1, 1)
    np.testing.assert_array_equal(got, want)
    assert np.isfinite(got).all()
