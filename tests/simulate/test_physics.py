"""The simulator's physics equals the reference implementations."""

from __future__ import annotations

import numpy as np
import prosail
import pytest
import spyndex

from agrostress.cube import BANDS
from agrostress.simulate.canopy import campbell_lidf, sail_rsot
from agrostress.simulate.kernels import prospect_fast, sail_bands_fast
from agrostress.simulate.leaf import prospect_d
from agrostress.simulate.sensor import band_centroids, spectral_sampling

ORDER = ("n", "cab", "car", "cbrown", "cw", "cm", "ant")


def leaves(m: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "n": rng.uniform(1.0, 2.5, m), "cab": rng.uniform(0, 80, m), "car": rng.uniform(0, 20, m),
        "cbrown": rng.uniform(0, 3, m), "cw": rng.uniform(0.002, 0.07, m),
        "cm": rng.uniform(0.001, 0.01, m), "ant": rng.uniform(0, 3, m),
    }


@pytest.mark.parametrize("impl", [prospect_d, prospect_fast])
def test_batched_prospect_equals_prosail(impl):
    p = leaves(8)
    refl, tran = impl(**p, index=np.arange(2101))
    for i in range(8):
        _, r_ref, t_ref = prosail.run_prospect(*[p[k][i] for k in ORDER])
        np.testing.assert_allclose(refl[i], r_ref, atol=1e-7)
        np.testing.assert_allclose(tran[i], t_ref, atol=1e-7)


@pytest.mark.parametrize("geometry", [(30.0, 5.0, 120.0), (55.0, 9.0, 10.0), (25.0, 0.0, 0.0)])
def test_batched_sail_equals_prosail(geometry):
    m = 6
    p = leaves(m, seed=1)
    rho, tau = prospect_d(**p)
    rng = np.random.default_rng(2)
    lai = rng.uniform(0, 8, m)
    lai[0] = 0.0
    ala = rng.uniform(30, 80, m)
    hot = rng.uniform(0.01, 0.5, m)
    soil = np.tile(np.asarray(prosail.spectral_lib.soil.rsoil1) * 0.9, (m, 1))
    ours = sail_rsot(rho, tau, lai, ala, hot, soil, *geometry)
    for i in range(m):
        ref = prosail.run_sail(rho[i], tau[i], lai[i], ala[i], hot[i], *geometry, rsoil0=soil[i])
        np.testing.assert_allclose(ours[i], ref, atol=1e-10)
    weights = np.eye(2101)[:, :40]  # first 40 wavelengths as "bands"
    fast = sail_bands_fast(rho, tau, lai, campbell_lidf(ala), hot, soil, *geometry, weights)
    np.testing.assert_allclose(fast, ours[:, :40], atol=1e-10)


@pytest.mark.parametrize("platform", ["S2A", "S2B"])
def test_srf_centroids_match_spyndex_band_centres(platform):
    attr = {"S2A": "sentinel2a", "S2B": "sentinel2b"}[platform]
    ours = band_centroids(platform)
    for band in BANDS:
        ref = getattr(spyndex.bands, _spyndex_name(band))
        centre = getattr(ref, attr).wavelength
        assert abs(ours[band] - centre) <= 1.0, (band, ours[band], centre)


def _spyndex_name(band: str) -> str:
    names = {"B02": "B", "B03": "G", "B04": "R", "B05": "RE1", "B06": "RE2", "B07": "RE3",
             "B08": "N", "B8A": "N2", "B11": "S1", "B12": "S2"}
    return names[band]


def test_s2a_and_s2b_differ_in_the_red_edge():
    a, b = band_centroids("S2A"), band_centroids("S2B")
    assert abs(a["B07"] - b["B07"]) > 2.0


@pytest.mark.parametrize(("step", "tolerance"), [(None, 2e-4), (5, 1e-3)])
@pytest.mark.parametrize("platform", ["S2A", "S2B"])
def test_reduced_spectral_sampling_matches_1nm_within_l2a_noise(step, tolerance, platform):
    """Fitted quadrature (default) and the uniform 5 nm grid against the exact 1-nm integral.

    The library here (leaves, soils, bare pixels, geometry) is independent of the fit's.
    """
    m = 300
    p = leaves(m, seed=3)
    rng = np.random.default_rng(4)
    lai = np.where(rng.random(m) < 0.1, 0.0, rng.uniform(0.2, 7, m))
    ala, hot = rng.uniform(45, 75, m), rng.uniform(0.05, 0.3, m)
    moist, bright = rng.random((m, 1)), rng.uniform(0.6, 1.4, (m, 1))
    dry, wet = (np.asarray(s) for s in (prosail.spectral_lib.soil.rsoil1, prosail.spectral_lib.soil.rsoil2))
    out = {}
    for st in (1, step):
        s = spectral_sampling(st)
        soil = bright * (moist * dry[s.index] + (1 - moist) * wet[s.index])
        rho, tau = prospect_fast(**p, index=s.index)
        out[st] = sail_bands_fast(
            rho, tau, lai, campbell_lidf(ala), hot, soil, 35, 5, 60, s.weights[platform]
        )
    assert spectral_sampling(1).index.size > 700  # the ~770 wavelengths the bands see
    assert spectral_sampling(step).index.size < (80 if step is None else 170)
    err = np.abs(out[step] - out[1]).max()
    assert err < tolerance


@pytest.mark.parametrize("step", [None, 5])
def test_spectral_weights_sum_to_one(step):
    s = spectral_sampling(step)
    for w in s.weights.values():
        np.testing.assert_allclose(w.sum(axis=0), 1.0, atol=1e-9)
