"""Fused, compiled PROSPECT-D and 4SAIL kernels (numba), the simulator's fast path.

They evaluate exactly the equations of :mod:`agrostress.simulate.leaf` and
:mod:`agrostress.simulate.canopy` (tested equal, and equal to ``prosail``), but per
(pixel, wavelength) element without numpy temporaries, parallel over pixels, and fold the
sensor's SRF weights in so that only band reflectances are stored.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from agrostress.simulate.canopy import _angular
from agrostress.simulate.leaf import _LOG_K0, _N_TAB, _coefficients, _tau_table


@numba.njit(parallel=True, cache=True, error_model="numpy", fastmath={"arcp", "contract", "nsz"})
def _prospect(n, conc, kcoef, talf, t12, t21, table, inv_step):  # pragma: no cover - compiled
    npx, nw = conc.shape[0], kcoef.shape[1]
    rho = np.empty((npx, nw))
    tau_out = np.empty((npx, nw))
    for p in numba.prange(npx):
        nn = n[p]
        for w in range(nw):
            k = 0.0
            for c in range(conc.shape[1]):
                k += conc[p, c] * kcoef[c, w]
            k /= nn
            if k > 0:
                pos = (math.log(max(k, 1e-10)) - _LOG_K0) * inv_step
                pos = min(max(pos, 0.0), _N_TAB - 1.0)
                i = int(pos)
                tau = table[i] + (table[i + 1] - table[i]) * (pos - i)
            else:
                tau = 1.0
            ta_, t12_, t21_ = talf[w], t12[w], t21[w]
            r21 = 1.0 - t21_
            denom = 1.0 - r21 * r21 * tau * tau
            ta = ta_ * tau * t21_ / denom
            ra = (1.0 - ta_) + r21 * tau * ta
            t = t12_ * tau * t21_ / denom
            r = (1.0 - t12_) + r21 * tau * t
            if r + t >= 1.0:
                tsub = t / (t + (1 - t) * (nn - 1))
                rsub = 1 - tsub
            else:
                d = math.sqrt(max((1 + r + t) * (1 + r - t) * (1 - r + t) * (1 - r - t), 0.0))
                rq, tq = r * r, t * t
                a = (1 + rq - tq + d) / (2 * r)
                b = (1 - rq + tq + d) / (2 * t)
                bnm1 = math.exp((nn - 1) * math.log(b))
                bn2 = bnm1 * bnm1
                a2 = a * a
                den = a2 * bn2 - 1
                rsub = a * (bn2 - 1) / den
                tsub = bnm1 * (a2 - 1) / den
            den = 1 - rsub * r
            rho[p, w] = ra + ta * rsub * t / den
            tau_out[p, w] = ta * tsub / den
    return rho, tau_out


@numba.njit(inline="always")
def _j1(k, m, t, ekt, emt):  # pragma: no cover - compiled
    """SAIL's J1 with exp(-k t) and exp(-m t) given (they are shared by all J terms)."""
    delta = (k - m) * t
    if abs(delta) > 1e-3:
        return (emt - ekt) / (k - m)
    return 0.5 * t * (ekt + emt) * (1.0 - delta * delta / 12.0)


@numba.njit(parallel=True, cache=True, error_model="numpy", fastmath={"arcp", "contract", "nsz"})
def _sail_bands(rho, tau, lai, geo, soil, weights):  # pragma: no cover - compiled
    """geo columns: ks, ko, bf, sob, sof, tsstoo, sumint."""
    npx, nw = rho.shape
    nb = weights.shape[1]
    out = np.zeros((npx, nb))
    for p in numba.prange(npx):
        ks, ko, bf, sob, sof, tsstoo, sumint = (
            geo[p, 0], geo[p, 1], geo[p, 2], geo[p, 3], geo[p, 4], geo[p, 5], geo[p, 6]
        )
        L = lai[p]
        sdb, sdf = 0.5 * (ks + bf), 0.5 * (ks - bf)
        dob, dof = 0.5 * (ko + bf), 0.5 * (ko - bf)
        ddb, ddf = 0.5 * (1.0 + bf), 0.5 * (1.0 - bf)
        tss = math.exp(-ks * L)
        too = math.exp(-ko * L)
        z = (1.0 - math.exp(-(ks + ko) * L)) / (ks + ko)
        for w in range(nw):
            rs = soil[p, w]
            if L <= 0:
                val = rs
            else:
                r_, t_ = rho[p, w], tau[p, w]
                sigb = max(ddb * r_ + ddf * t_, 1e-36)
                sigf = max(ddf * r_ + ddb * t_, 1e-36)
                att = 1.0 - sigf
                m = math.sqrt(att * att - sigb * sigb)
                sb, sf = sdb * r_ + sdf * t_, sdf * r_ + sdb * t_
                vb, vf = dob * r_ + dof * t_, dof * r_ + dob * t_
                ww = sob * r_ + sof * t_
                e1 = math.exp(-m * L)
                e2 = e1 * e1
                rinf = (att - m) / sigb
                rinf2 = rinf * rinf
                re = rinf * e1
                denom = 1.0 - rinf2 * e2
                # exp(-(k + m) L) = exp(-k L) exp(-m L): one exp per element for all J terms
                j1ks = _j1(ks, m, L, tss, e1)
                j2ks = (1.0 - tss * e1) / (ks + m)
                j1ko = _j1(ko, m, L, too, e1)
                j2ko = (1.0 - too * e1) / (ko + m)
                pss, qss = (sf + sb * rinf) * j1ks, (sf * rinf + sb) * j2ks
                pv, qv = (vf + vb * rinf) * j1ko, (vf * rinf + vb) * j2ko
                rdd = rinf * (1.0 - e2) / denom
                tsd = (pss - re * qss) / denom
                rdo = (qv - re * pv) / denom
                tdo = (pv - re * qv) / denom
                g1 = (z - j1ks * too) / (ko + m)
                g2 = (z - j1ko * tss) / (ks + m)
                tv1 = (vf * rinf + vb) * g1
                tv2 = (vf + vb * rinf) * g2
                rsod = (
                    tv1 * (sf + sb * rinf) + tv2 * (sf * rinf + sb) - (rdo * qss + tdo * pss) * rinf
                ) / (1.0 - rinf2)
                rso = ww * L * sumint + rsod
                dn = max(1.0 - rs * rdd, 1e-36)
                rsodt = ((tss + tsd) * tdo + (tsd + tss * rs * rdd) * too) * rs / dn
                val = rso + tsstoo * rs + rsodt
            for b in range(nb):
                out[p, b] += val * weights[w, b]
    return out


@numba.njit(parallel=True, cache=True, error_model="numpy", fastmath={"arcp", "contract", "nsz"})
def _hotspot(alf, lai, ko, ks):  # pragma: no cover - compiled
    """4SAIL's hot-spot integral per pixel (same 20-step quadrature as ``canopy._hotspot``)."""
    npx = lai.shape[0]
    tsstoo = np.empty(npx)
    sumint = np.empty(npx)
    for p in numba.prange(npx):
        a, L, k_o, k_s = alf[p], lai[p], ko[p], ks[p]
        fhot = L * math.sqrt(k_o * k_s)
        fint = (1.0 - math.exp(-a)) * 0.05
        x1 = y1 = total = 0.0
        f1 = 1.0
        for istep in range(1, 21):
            if istep < 20:  # exp(-a * x2) = 1 - istep * fint by construction of x2
                e = 1.0 - istep * fint
                x2 = -math.log(e) / a
            else:
                x2, e = 1.0, math.exp(-a)
            y2 = -(k_o + k_s) * L * x2 + fhot * (1.0 - e) / a
            f2 = math.exp(y2)
            total += (f2 - f1) * (x2 - x1) / (y2 - y1)
            x1, y1, f1 = x2, y2, f2
        tsstoo[p] = f1
        sumint[p] = total if math.isfinite(total) else 0.0
    return tsstoo, sumint


def prospect_fast(
    n: np.ndarray, cab, car, cbrown, cw, cm, ant, index: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Compiled PROSPECT-D, same signature and result as :func:`leaf.prospect_d`."""
    c = _coefficients(tuple(int(i) for i in index))
    table, step = _tau_table()
    conc = np.ascontiguousarray(
        np.stack([np.broadcast_to(np.asarray(v, float), np.shape(n)) for v in (cab, car, cbrown, cw, cm, ant)], axis=1)
    )
    return _prospect(
        np.ascontiguousarray(n, dtype=float), conc, np.ascontiguousarray(c["k"]),
        c["talf"], c["t12"], c["t21"], table, 1.0 / step,
    )


def canopy_geometry(
    lai, lidf: np.ndarray, hotspot, tts: float, tto: float, psi: float
) -> np.ndarray:
    """Per-pixel extinction/scattering and hot-spot terms, (pixels, 7).

    ``lidf``: (pixels, 18) leaf inclination distributions (:func:`canopy.campbell_lidf`).
    """
    terms, dso = _angular(float(tts), float(tto), float(psi))
    ks, ko, bf, sob, sof = (lidf @ terms).T
    lai_eff = np.where(np.asarray(lai) <= 0, 1e-6, lai)
    hot = np.asarray(hotspot, dtype=float)
    with np.errstate(divide="ignore"):
        alf = np.where(hot > 0, (dso / np.where(hot > 0, hot, 1.0)) * 2.0 / (ks + ko), 1e36)
    if dso == 0:
        tsstoo, sumint = np.exp(-ks * lai_eff), (1.0 - np.exp(-ks * lai_eff)) / (ks * lai_eff)
    else:
        tsstoo, sumint = _hotspot(
            *(np.ascontiguousarray(np.broadcast_to(v, ks.shape), dtype=float) for v in (alf, lai_eff, ko, ks))
        )
    return np.ascontiguousarray(np.stack([ks, ko, bf, sob, sof, tsstoo, sumint], axis=1))


def sail_bands_fast(
    rho: np.ndarray, tau: np.ndarray, lai, lidf: np.ndarray, hotspot, soil: np.ndarray,
    tts: float, tto: float, psi: float, weights: np.ndarray,
) -> np.ndarray:
    """Compiled 4SAIL ``rsot`` folded with SRF ``weights``: (pixels, bands).

    Pixels with LAI <= 0 are bare soil; their ``rho``/``tau`` rows are not read.
    """
    geo = canopy_geometry(lai, lidf, hotspot, tts, tto, psi)
    return _sail_bands(
        np.ascontiguousarray(rho), np.ascontiguousarray(tau), np.asarray(lai, dtype=float),
        geo, np.ascontiguousarray(soil), np.ascontiguousarray(weights),
    )
