"""Canopy reflectance: 4SAIL (Verhoef et al. 2007), batched over pixels in numpy.

The same equations as ``prosail.run_sail`` (tested equal): per-pixel LAI, mean leaf angle
(Campbell ellipsoidal LIDF), hot spot, leaf and soil spectra; the sun/view geometry is shared
by all pixels of one acquisition. Returns the bidirectional reflectance factor ``rsot``
(prosail's "SDR"), the quantity an L2A surface reflectance approximates.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

N_ANGLES = 18
_LITAB = (np.arange(N_ANGLES) + 0.5) * (90.0 / N_ANGLES)


def campbell_lidf(ala: np.ndarray) -> np.ndarray:
    """Campbell (1990) ellipsoidal leaf-inclination distribution, (pixels, 18)."""
    ala = np.atleast_1d(np.asarray(ala, dtype=float))[:, None]
    excent = np.exp(-1.6184e-5 * ala**3 + 2.1145e-3 * ala**2 - 1.2390e-1 * ala + 3.2491)
    edges = np.deg2rad(np.arange(N_ANGLES + 1) * (90.0 / N_ANGLES))
    x = excent / np.sqrt(1.0 + excent**2 * np.tan(edges) ** 2)  # (n, 19)
    with np.errstate(invalid="ignore", divide="ignore"):
        alph = excent / np.sqrt(np.abs(1.0 - excent**2))
        alph2 = alph**2
        # excent > 1 (oblate)
        apx = np.sqrt(alph2 + x**2)
        f_gt = x * apx + alph2 * np.log(x + apx)
        # excent < 1 (prolate)
        amx = np.sqrt(np.maximum(alph2 - x**2, 0.0))
        f_lt = x * amx + alph2 * np.arcsin(np.clip(x / alph, -1, 1))
        f = np.where(excent > 1.0, f_gt, f_lt)
        freq = np.abs(f[:, :-1] - f[:, 1:])
        sphere = np.abs(np.cos(edges[:-1]) - np.cos(edges[1:]))
        freq = np.where(excent == 1.0, sphere, freq)
    return freq / freq.sum(axis=1, keepdims=True)


@lru_cache(maxsize=256)
def _angular(tts: float, tto: float, psi: float) -> tuple[np.ndarray, ...]:
    """Per-inclination extinction and scattering terms for one geometry (18 angles each)."""
    cts, cto = np.cos(np.deg2rad(tts)), np.cos(np.deg2rad(tto))
    sts, sto = np.sin(np.deg2rad(tts)), np.sin(np.deg2rad(tto))
    psir = np.deg2rad(psi)
    cospsi = np.cos(psir)
    ttl = np.deg2rad(_LITAB)
    cttl, sttl = np.cos(ttl), np.sin(ttl)
    cs, co, ss, so = cttl * cts, cttl * cto, sttl * sts, sttl * sto
    cosbts = np.where(np.abs(ss) > 1e-6, -cs / np.where(ss == 0, 1, ss), 5.0)
    cosbto = np.where(np.abs(so) > 1e-6, -co / np.where(so == 0, 1, so), 5.0)
    in_s = np.abs(cosbts) < 1.0
    bts = np.where(in_s, np.arccos(np.clip(cosbts, -1, 1)), np.pi)
    ds = np.where(in_s, ss, cs)
    in_o = np.abs(cosbto) < 1.0
    bto = np.where(in_o, np.arccos(np.clip(cosbto, -1, 1)), np.pi if tto < 90 else 0.0)
    do = np.where(in_o, so, co if tto < 90 else -co)
    chi_s = 2.0 / np.pi * ((bts - np.pi * 0.5) * cs + np.sin(bts) * ss)
    chi_o = 2.0 / np.pi * ((bto - np.pi * 0.5) * co + np.sin(bto) * so)
    btran1 = np.abs(bts - bto)
    btran2 = np.pi - np.abs(bts + bto - np.pi)
    first = psir <= btran1
    second = psir <= btran2
    bt1 = np.where(first, psir, btran1)
    bt2 = np.where(first, btran1, np.where(second, psir, btran2))
    bt3 = np.where(first, btran2, np.where(second, btran2, psir))
    t1 = 2.0 * cs * co + ss * so * cospsi
    t2 = np.where(bt2 > 0, np.sin(bt2) * (2.0 * ds * do + ss * so * np.cos(bt1) * np.cos(bt3)), 0.0)
    denom = 2.0 * np.pi**2
    frho = np.maximum(((np.pi - bt2) * t1 + t2) / denom, 0.0)
    ftau = np.maximum((-bt2 * t1 + t2) / denom, 0.0)
    ctscto = cts * cto
    terms = np.stack(
        [chi_s / cts, chi_o / cto, cttl**2, frho * np.pi / ctscto, ftau * np.pi / ctscto], axis=1
    )  # (18, 5): ks, ko, bf, sob, sof per inclination
    tants, tanto = np.tan(np.deg2rad(tts)), np.tan(np.deg2rad(tto))
    dso = np.sqrt(tants**2 + tanto**2 - 2.0 * tants * tanto * cospsi)
    return terms, np.float64(dso)


def _j1(k: np.ndarray, m: np.ndarray, t: np.ndarray) -> np.ndarray:
    delta = (k - m) * t
    near = np.abs(delta) <= 1e-3
    safe = np.where(near, 1.0, k - m)
    far = (np.exp(-m * t) - np.exp(-k * t)) / safe
    close = 0.5 * t * (np.exp(-k * t) + np.exp(-m * t)) * (1.0 - delta**2 / 12.0)
    return np.where(near, close, far)


def _j2(k: np.ndarray, m: np.ndarray, t: np.ndarray) -> np.ndarray:
    return (1.0 - np.exp(-(k + m) * t)) / (k + m)


def _hotspot(alf: np.ndarray, lai: np.ndarray, ko: np.ndarray, ks: np.ndarray):
    fhot = lai * np.sqrt(ko * ks)
    x1 = np.zeros_like(lai)
    y1 = np.zeros_like(lai)
    f1 = np.ones_like(lai)
    fint = (1.0 - np.exp(-alf)) * 0.05
    sumint = np.zeros_like(lai)
    for istep in range(1, 21):
        x2 = -np.log(1.0 - istep * fint) / alf if istep < 20 else np.ones_like(lai)
        y2 = -(ko + ks) * lai * x2 + fhot * (1.0 - np.exp(-alf * x2)) / alf
        f2 = np.exp(y2)
        sumint = sumint + (f2 - f1) * (x2 - x1) / (y2 - y1)
        x1, y1, f1 = x2, y2, f2
    return f1, np.nan_to_num(sumint)


def sail_rsot(
    rho: np.ndarray,
    tau: np.ndarray,
    lai: np.ndarray,
    ala: np.ndarray,
    hotspot: np.ndarray,
    rsoil: np.ndarray,
    tts: float,
    tto: float,
    psi: float,
) -> np.ndarray:
    """Bidirectional canopy reflectance factor (pixels, wavelengths).

    ``rho``/``tau``/``rsoil``: (pixels, W); ``lai``/``ala``/``hotspot``: (pixels,);
    ``tts``/``tto``/``psi``: sun zenith, view zenith, relative azimuth in degrees.
    """
    terms, dso = _angular(float(tts), float(tto), float(psi))
    lidf = campbell_lidf(ala)
    ks, ko, bf, sob, sof = (lidf @ terms).T[:, :, None]  # each (n, 1)
    lai_in = np.asarray(lai, dtype=float)
    bare = lai_in <= 0
    lai = np.where(bare, 1e-6, lai_in)[:, None]
    hot = np.asarray(hotspot, dtype=float)[:, None]

    sdb, sdf = 0.5 * (ks + bf), 0.5 * (ks - bf)
    dob, dof = 0.5 * (ko + bf), 0.5 * (ko - bf)
    ddb, ddf = 0.5 * (1.0 + bf), 0.5 * (1.0 - bf)
    sigb = np.maximum(ddb * rho + ddf * tau, 1e-36)
    sigf = np.maximum(ddf * rho + ddb * tau, 1e-36)
    att = 1.0 - sigf
    m = np.sqrt(att**2 - sigb**2)
    sb, sf = sdb * rho + sdf * tau, sdf * rho + sdb * tau
    vb, vf = dob * rho + dof * tau, dof * rho + dob * tau
    w = sob * rho + sof * tau

    e1 = np.exp(-m * lai)
    e2 = e1 * e1
    rinf = (att - m) / sigb
    rinf2 = rinf * rinf
    re = rinf * e1
    denom = 1.0 - rinf2 * e2
    j1ks, j2ks = _j1(ks, m, lai), _j2(ks, m, lai)
    j1ko, j2ko = _j1(ko, m, lai), _j2(ko, m, lai)
    pss, qss = (sf + sb * rinf) * j1ks, (sf * rinf + sb) * j2ks
    pv, qv = (vf + vb * rinf) * j1ko, (vf * rinf + vb) * j2ko
    rdd = rinf * (1.0 - e2) / denom
    tsd = (pss - re * qss) / denom
    rdo = (qv - re * pv) / denom
    tdo = (pv - re * qv) / denom
    tss = np.exp(-ks * lai)
    too = np.exp(-ko * lai)
    z = _j2(ks, ko, lai)
    g1 = (z - j1ks * too) / (ko + m)
    g2 = (z - j1ko * tss) / (ks + m)
    tv1 = (vf * rinf + vb) * g1
    tv2 = (vf + vb * rinf) * g2
    rsod = (tv1 * (sf + sb * rinf) + tv2 * (sf * rinf + sb) - (rdo * qss + tdo * pss) * rinf) / (
        1.0 - rinf2
    )
    with np.errstate(divide="ignore"):
        alf = np.where(hot > 0, (dso / np.where(hot > 0, hot, 1.0)) * 2.0 / (ks + ko), 1e36)
    if dso == 0:
        tsstoo, sumint = tss, (1.0 - tss) / (ks * lai)
    else:
        tsstoo, sumint = _hotspot(alf[:, 0], lai[:, 0], ko[:, 0], ks[:, 0])
        tsstoo, sumint = tsstoo[:, None], sumint[:, None]
    rso = w * lai * sumint + rsod
    dn = np.maximum(1.0 - rsoil * rdd, 1e-36)
    rsodt = ((tss + tsd) * tdo + (tsd + tss * rsoil * rdd) * too) * rsoil / dn
    rsot = rso + tsstoo * rsoil + rsodt
    return np.where(bare[:, None], rsoil, rsot)
