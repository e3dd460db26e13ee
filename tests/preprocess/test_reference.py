"""The wheat reference: gate, trimmed median, tile-independent sampling, built-in fallback."""

from __future__ import annotations

import numpy as np
import pytest

from agrostress.preprocess.reference import (
    MIN_GROUPS,
    MIN_PIXELS,
    ReferenceSampler,
    cereal_like,
    trimmed_median,
)

NAMES = ["B04", "B08", "LAI"]
DOYS = np.arange(60, 201, 5, dtype=float)


def series(ndvi: np.ndarray, lai: float = 3.0) -> np.ndarray:
    """(T,) NDVI → (T, 3) features whose B04/B08 give that NDVI."""
    nir = np.full_like(ndvi, 0.4)
    red = nir * (1 - ndvi) / (1 + ndvi)
    return np.stack([red, nir, np.full_like(ndvi, lai)], axis=1).astype(np.float32)


def wheat(shift: float = 0.0, peak: float = 0.88) -> np.ndarray:
    """Winter wheat: green in March, peak in May, ripe and harvested by July."""
    rise = 0.5 + (peak - 0.5) / (1 + np.exp(-(DOYS - 100 - shift) / 8))
    fall = 1 / (1 + np.exp((DOYS - 170 - shift) / 6))
    return 0.2 + (rise - 0.2) * fall


def maize() -> np.ndarray:
    return 0.15 + 0.7 / (1 + np.exp(-(DOYS - 170) / 8))


def meadow() -> np.ndarray:
    return np.full_like(DOYS, 0.8)


def test_gate_keeps_winter_cereals_only():
    s = np.stack([series(wheat()), series(wheat(-15)), series(maize()), series(meadow())])
    assert cereal_like(s, NAMES, DOYS).tolist() == [True, True, False, False]


def test_gate_needs_red_and_nir():
    with pytest.raises(ValueError, match="B04 and B08"):
        cereal_like(np.zeros((1, len(DOYS), 1)), ["LAI"], DOYS)


def test_trimmed_median_settles_on_the_dominant_healthy_season():
    rng = np.random.default_rng(0)
    healthy = [series(wheat(rng.normal(0, 2))) for _ in range(60)]
    early_ripe = [series(wheat(-20)) for _ in range(25)]  # stray crops / stressed fields
    low = [series(wheat(0, peak=0.7)) for _ in range(30)]  # a less green (N-deficient) share
    ref = trimmed_median(np.stack(healthy + early_ripe + low), NAMES)
    want = series(wheat())
    nd = lambda x: (x[:, 1] - x[:, 0]) / (x[:, 1] + x[:, 0])  # noqa: E731
    assert np.abs(nd(ref) - nd(want)).max() < 0.05


def _scene(n_fields: int, px: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Features (T, F, H, W) of wheat fields side by side, and their field index."""
    w = n_fields * 8
    f = np.zeros((len(DOYS), len(NAMES), px // 8 * 8 if px >= 8 else 8, w), np.float32)
    group = np.zeros(f.shape[2:], np.int32)
    for i in range(n_fields):
        f[:, :, :, i * 8:(i + 1) * 8] = series(wheat(i))[:, :, None, None]
        group[:, i * 8:(i + 1) * 8] = i + 1
    return f, group


def test_sampler_is_tile_independent():
    f, group = _scene(6)
    whole = ReferenceSampler(NAMES, DOYS, f.shape[-1])
    whole.add(f, group > 0, group, (0, 0))
    tiled = ReferenceSampler(NAMES, DOYS, f.shape[-1])
    for x0 in range(0, f.shape[-1], 16):
        sl = slice(x0, x0 + 16)
        tiled.add(f[..., sl], group[:, sl] > 0, group[:, sl], (0, x0))
    a, b = whole.reference(None), tiled.reference(None)
    assert a.source == b.source == "scene" and a.groups == 6
    np.testing.assert_array_equal(a.series, b.series)


def test_a_field_alone_falls_back_to_the_builtin_reference():
    f, group = _scene(1, px=40)  # one field: 320 px but fewer than MIN_GROUPS fields
    assert (group > 0).sum() >= MIN_PIXELS and MIN_GROUPS > 1
    s = ReferenceSampler(NAMES, DOYS, f.shape[-1])
    s.add(f, group > 0, group, (0, 0))
    builtin = series(wheat(5))
    ref = s.reference(builtin)
    assert ref.source == "built-in" and ref.groups == 1
    np.testing.assert_array_equal(ref.series, builtin)
    with pytest.raises(ValueError, match="no built-in"):
        s.reference(None)


def test_no_wheat_at_all_falls_back():
    f = np.stack([series(maize())] * 4, axis=-1)[:, :, None, :].repeat(30, axis=2)
    s = ReferenceSampler(NAMES, DOYS, 4)
    s.add(f, np.ones(f.shape[2:], bool), None, (0, 0))
    ref = s.reference(series(wheat()))
    assert ref.source == "built-in" and ref.pixels == 0
    assert ref.describe()["source"] == "built-in"
