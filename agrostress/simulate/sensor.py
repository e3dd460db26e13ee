"""Sentinel-2 MSI sensor model: real S2A/S2B spectral response functions (ESA S2-SRF, pyrsr).

Band reflectance is the SRF-weighted mean of the spectrum. The physics is computed at fewer
wavelengths than 1 nm: by default at fitted quadrature nodes (:mod:`.quadrature`, ~65 nodes,
≤ ~3e-4 from the 1-nm integral); or on a uniform ``step_nm`` grid with the SRF weights folded so
the band value is the SRF integral of the linearly interpolated spectrum (exact at 1 nm).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from agrostress.cube import BANDS

PYRSR_SATELLITE = {"S2A": "Sentinel-2A", "S2B": "Sentinel-2B"}
_PYRSR_BAND = {b: b[1:].lstrip("0") for b in BANDS}  # "B02" -> "2", "B8A" -> "8A"
WL_MIN, WL_MAX = 400, 2500  # the PROSPECT/SAIL spectral range (1 nm)


@lru_cache(maxsize=4)
def srf_1nm(platform: str) -> np.ndarray:
    """SRFs on the 400–2500 nm 1-nm grid, shape (2101, 10), each column normalised to sum 1."""
    from pyrsr import RSR

    rsr = RSR(PYRSR_SATELLITE[platform], "MSI", no_thermal=True)
    wl = np.asarray(rsr.rsrs_wvl, dtype=float)
    grid = np.arange(WL_MIN, WL_MAX + 1, dtype=float)
    out = np.zeros((grid.size, len(BANDS)))
    for j, band in enumerate(BANDS):
        resp = np.asarray(rsr.rsrs[_PYRSR_BAND[band]], dtype=float)
        resp = np.where(resp > 1e-4 * resp.max(), resp, 0.0)
        out[:, j] = np.interp(grid, wl, resp, left=0.0, right=0.0)
        out[:, j] /= out[:, j].sum()
    return out


def band_centroids(platform: str) -> dict[str, float]:
    """SRF-weighted centre wavelength (nm) of every band."""
    grid = np.arange(WL_MIN, WL_MAX + 1, dtype=float)
    srf = srf_1nm(platform)
    return {b: float(grid @ srf[:, j]) for j, b in enumerate(BANDS)}


@dataclass(frozen=True)
class SpectralSampling:
    """The wavelengths the physics is evaluated at and the matrices that turn spectra into bands.

    ``index``: positions (0 = 400 nm) of the computed wavelengths in the 1-nm grid;
    ``weights[platform]``: (len(index), 10) matrix, spectrum @ weights = band reflectances.
    """

    step_nm: int | None  # None: fitted quadrature nodes
    index: np.ndarray
    weights: dict[str, np.ndarray]

    @property
    def wavelengths(self) -> np.ndarray:
        return self.index + WL_MIN


@lru_cache(maxsize=8)
def spectral_sampling(
    step_nm: int | None = None, platforms: tuple[str, ...] = ("S2A", "S2B")
) -> SpectralSampling:
    """Wavelengths the physics runs at and the weights that turn them into bands.

    ``step_nm=None`` (default): fitted quadrature nodes; an integer: every ``step_nm`` nm over
    the wavelengths any band sees, with linear-interpolation SRF weights (1 = exact).
    """
    if step_nm is None:
        return _fitted_sampling(platforms)
    if step_nm < 1:
        raise ValueError("step_nm must be >= 1")
    srfs = {p: srf_1nm(p) for p in platforms}
    seen = np.flatnonzero(np.any([s.sum(axis=1) > 0 for s in srfs.values()], axis=0))
    lo, hi = seen.min(), seen.max()
    coarse = np.arange(lo - (lo % step_nm), hi + step_nm, step_nm)
    # keep coarse nodes needed to interpolate any seen wavelength
    needed = set()
    for i in seen:
        k = i // step_nm
        needed.update({k * step_nm, min((k + 1) * step_nm, coarse[-1])})
    index = np.array(sorted(needed), dtype=int)
    pos = {w: j for j, w in enumerate(index)}
    weights = {}
    for p, srf in srfs.items():
        w = np.zeros((index.size, len(BANDS)))
        for i in seen:
            lo_node = (i // step_nm) * step_nm
            frac = (i - lo_node) / step_nm
            w[pos[lo_node]] += (1 - frac) * srf[i]
            if frac > 0:
                w[pos[lo_node + step_nm]] += frac * srf[i]
        weights[p] = w
    return SpectralSampling(step_nm=step_nm, index=index, weights=weights)


def _fitted_sampling(platforms: tuple[str, ...]) -> SpectralSampling:
    from agrostress.simulate.quadrature import band_nodes, canopy_library, fit_weights

    srfs = [srf_1nm(p) for p in platforms]
    nodes, members = band_nodes(srfs)
    picks = np.zeros((WL_MAX - WL_MIN + 1, nodes.size))
    picks[nodes, np.arange(nodes.size)] = 1.0
    library = canopy_library(np.hstack([picks, *srfs]))
    at_nodes, targets = library[:, : nodes.size], np.split(library[:, nodes.size :], len(srfs), axis=1)
    weights = {p: fit_weights(at_nodes, t, members) for p, t in zip(platforms, targets, strict=True)}
    return SpectralSampling(step_nm=None, index=nodes, weights=weights)
