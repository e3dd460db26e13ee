"""Leaf optics: PROSPECT-D (Féret et al. 2017), batched over many leaves in numpy.

Same equations and coefficients as ``prosail.run_prospect`` (tested equal), evaluated for an
array of leaves at once and only at the wavelengths the sensor needs.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.special import exp1

LEAF_PARAMS = ("n", "cab", "car", "cbrown", "cw", "cm", "ant")

# tau(k) = (1 - k) exp(-k) + k^2 E1(k), the plate transmissivity of PROSPECT, tabulated on a
# uniform grid in log k (2^16 nodes, 1e-10..80): linear interpolation is within 6e-9 of
# scipy's exp1 and ~10x faster, which dominates the simulator's cost.
_LOG_K0, _LOG_K1, _N_TAB = np.log(1e-10), np.log(80.0), 1 << 16


@lru_cache(maxsize=1)
def _tau_table() -> tuple[np.ndarray, float]:
    u = np.linspace(_LOG_K0, _LOG_K1, _N_TAB)
    k = np.exp(u)
    table = (1 - k) * np.exp(-k) + k**2 * exp1(k)
    return np.append(table, 0.0), float(u[1] - u[0])


def plate_transmissivity(k: np.ndarray) -> np.ndarray:
    """PROSPECT's elementary-layer transmissivity for absorption ``k`` (fast, |err| < 1e-8)."""
    table, step = _tau_table()
    pos = (np.log(np.maximum(k, 1e-10)) - _LOG_K0) * (1.0 / step)
    np.clip(pos, 0, _N_TAB - 1, out=pos)
    i = pos.astype(np.intp)
    lo = table[i]
    return np.where(k > 0, lo + (table[i + 1] - lo) * (pos - i), 1.0)


def _tav(alpha_deg: float, nr: np.ndarray) -> np.ndarray:
    """Average transmissivity of a dielectric surface for solid angle ``alpha`` (Stern 1964)."""
    n2 = nr * nr
    npx = n2 + 1
    nm = n2 - 1
    a = (nr + 1) ** 2 / 2.0
    k = -((n2 - 1) ** 2) / 4.0
    sa = np.sin(np.deg2rad(alpha_deg))
    b1 = np.sqrt((sa * sa - npx / 2) ** 2 + k) if alpha_deg != 90 else 0.0
    b2 = sa * sa - npx / 2
    b = b1 - b2
    ts = (k**2 / (6 * b**3) + k / b - b / 2) - (k**2 / (6 * a**3) + k / a - a / 2)
    tp1 = -2 * n2 * (b - a) / npx**2
    tp2 = -2 * n2 * npx * np.log(b / a) / nm**2
    tp3 = n2 * (1 / b - 1 / a) / 2
    tp4 = (
        16 * n2**2 * (n2**2 + 1) * np.log((2 * npx * b - nm**2) / (2 * npx * a - nm**2))
        / (npx**3 * nm**2)
    )
    tp5 = 16 * n2**3 * (1.0 / (2 * npx * b - nm**2) - 1 / (2 * npx * a - nm**2)) / npx**3
    return (ts + tp1 + tp2 + tp3 + tp4 + tp5) / (2 * sa**2)


@lru_cache(maxsize=8)
def _coefficients(index_key: tuple[int, ...]) -> dict[str, np.ndarray]:
    from prosail import spectral_lib

    lib = spectral_lib.prospectd
    idx = np.asarray(index_key)
    nr = np.asarray(lib.nr)[idx]
    talf = _tav(40.0, nr)
    t12 = _tav(90.0, nr)
    t21 = t12 / (nr * nr)
    return {
        "k": np.stack(
            [np.asarray(getattr(lib, name))[idx] for name in ("kab", "kcar", "kbrown", "kw", "km", "kant")]
        ),  # (6, W) in the order cab, car, cbrown, cw, cm, ant
        "talf": talf,
        "ralf": 1.0 - talf,
        "t12": t12,
        "r12": 1.0 - t12,
        "t21": t21,
        "r21": 1.0 - t21,
    }


def prospect_d(
    n: np.ndarray,
    cab: np.ndarray,
    car: np.ndarray,
    cbrown: np.ndarray,
    cw: np.ndarray,
    cm: np.ndarray,
    ant: np.ndarray,
    index: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Leaf reflectance and transmittance, each (leaves, wavelengths).

    Parameters are 1-D arrays (one value per leaf) in PROSPECT units (µg/cm², cm, g/cm²).
    ``index`` selects wavelengths as offsets from 400 nm (default: all 2101).
    """
    if index is None:
        index = np.arange(2101)
    c = _coefficients(tuple(int(i) for i in index))
    conc = np.stack([np.atleast_1d(np.asarray(v, dtype=float)) for v in (cab, car, cbrown, cw, cm, ant)], axis=1)
    n = np.atleast_1d(np.asarray(n, dtype=float))[:, None]
    kall = (conc @ c["k"]) / n
    tau = plate_transmissivity(kall)

    denom = 1.0 - c["r21"] ** 2 * tau**2
    ta = c["talf"] * tau * c["t21"] / denom
    ra = c["ralf"] + c["r21"] * tau * ta
    t = c["t12"] * tau * c["t21"] / denom
    r = c["r12"] + c["r21"] * tau * t

    d = np.sqrt(np.maximum((1 + r + t) * (1 + r - t) * (1 - r + t) * (1 - r - t), 0.0))
    rq, tq = r * r, t * t
    a = (1 + rq - tq + d) / (2 * r)
    b = (1 - rq + tq + d) / (2 * t)
    bnm1 = np.power(b, n - 1)
    bn2 = bnm1 * bnm1
    a2 = a * a
    den = a2 * bn2 - 1
    rsub = a * (bn2 - 1) / den
    tsub = bnm1 * (a2 - 1) / den
    lossless = r + t >= 1.0
    if np.any(lossless):
        tsub_l = t / (t + (1 - t) * (n - 1))
        tsub = np.where(lossless, tsub_l, tsub)
        rsub = np.where(lossless, 1 - tsub_l, rsub)
    den = 1 - rsub * r
    refl = ra + ta * rsub * t / den
    tran = ta * tsub / den
    return refl, tran
