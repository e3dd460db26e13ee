"""Difficulty presets: random forest on NDVI only vs on all bands + indices, per preset.

    python bench/difficulty.py [--scenes 2] [--size 128] [--per-class 600]

Training and test pixels come from different simulated scenes (independent seeds), so the
figure measures generalisation to new fields. Features: clear observations (SCL 4/5) averaged
in 10-day bins over DOY 60–200, gaps linearly interpolated.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from sklearn.ensemble import RandomForestClassifier

from agrostress.cube import BANDS
from agrostress.simulate import SimulationConfig, simulate_scene

BINS = np.arange(60, 201, 10)
B = {b: i for i, b in enumerate(BANDS)}


def binned(ds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pixels, bins, bands) of labelled pixels, their labels and field ids."""
    lab = ds.label.values.ravel()
    keep = lab >= 0
    refl = ds.reflectance.values.reshape(ds.sizes["time"], len(BANDS), -1)[:, :, keep]
    ok = np.isin(ds.scl.values.reshape(ds.sizes["time"], -1)[:, keep], [4, 5])
    doy = ds.time.dt.dayofyear.values
    out = np.full((keep.sum(), BINS.size - 1, len(BANDS)), np.nan, dtype=np.float32)
    for k in range(BINS.size - 1):
        t = (doy >= BINS[k]) & (doy < BINS[k + 1])
        v = np.where(ok[t][:, None, :], refl[t], np.nan)
        if t.any():
            with np.errstate(all="ignore"), __import__("warnings").catch_warnings():
                __import__("warnings").simplefilter("ignore")
                out[:, k] = np.nanmean(v, axis=0).T
    # interpolate empty bins along time, per pixel and band
    x = np.arange(out.shape[1])
    for p in range(out.shape[0]):
        for b in range(out.shape[2]):
            s = out[p, :, b]
            m = np.isfinite(s)
            out[p, :, b] = np.interp(x, x[m], s[m]) if m.any() else 0.0
    return out, lab[keep], ds.field_id.values.ravel()[keep]


def features(x: np.ndarray, kind: str) -> np.ndarray:
    g = {k: x[:, :, i] for k, i in B.items()}
    eps = 1e-6
    ndvi = (g["B08"] - g["B04"]) / (g["B08"] + g["B04"] + eps)
    if kind == "ndvi":
        return ndvi
    idx = [
        ndvi,
        (g["B08"] - g["B05"]) / (g["B08"] + g["B05"] + eps),  # NDREI
        g["B07"] / (g["B05"] + eps) - 1,  # CIRE
        (g["B06"] - g["B05"]) / (g["B05"] - g["B04"] + eps),  # MTCI
        (g["B04"] - g["B02"]) / (g["B06"] + eps),  # PSRI
        1 / (g["B03"] + eps) - 1 / (g["B05"] + eps),  # ARI
        (g["B03"] - g["B04"]) / (g["B03"] + g["B04"] + eps),  # NGRDI
        (g["B08"] - g["B11"]) / (g["B08"] + g["B11"] + eps),  # NDMI
    ]
    return np.concatenate([x.reshape(x.shape[0], -1), *idx], axis=1)


def sample(x, y, per_class, rng):
    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), min(per_class, (y == c).sum()),
                                     replace=False) for c in range(3)])
    return x[idx], y[idx]


def run(preset: str, scenes: int, size: int, per_class: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    data = []
    for s in range(2 * scenes):
        ds, _ = simulate_scene(SimulationConfig(fields=12, size=size, seed=100 + s,
                                                difficulty=preset))
        data.append(binned(ds))
    train = [data[i] for i in range(scenes)]
    test = [data[i] for i in range(scenes, 2 * scenes)]
    res = {}
    for kind in ("ndvi", "all"):
        xtr = np.concatenate([features(d[0], kind) for d in train])
        ytr = np.concatenate([d[1] for d in train])
        xte = np.concatenate([features(d[0], kind) for d in test])
        yte = np.concatenate([d[1] for d in test])
        xtr, ytr = sample(xtr, ytr, per_class, rng)
        xte, yte = sample(xte, yte, per_class // 2, rng)
        rf = RandomForestClassifier(n_estimators=200, n_jobs=2, random_state=0).fit(xtr, ytr)
        res[kind] = float((rf.predict(xte) == yte).mean())
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenes", type=int, default=4, help="training scenes (as many for testing)")
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--per-class", type=int, default=1500)
    args = ap.parse_args()
    table = Table(title="random forest accuracy on independent simulated scenes (pixel level)")
    for col in ("difficulty", "NDVI only", "bands + indices", "seconds"):
        table.add_column(col, justify="right")
    results = {}
    for preset in ("easy", "benchmark", "hard"):
        t0 = time.perf_counter()
        r = run(preset, args.scenes, args.size, args.per_class)
        results[preset] = r
        table.add_row(preset, f"{r['ndvi']:.3f}", f"{r['all']:.3f}",
                      f"{time.perf_counter() - t0:.0f}")
    Console().print(table)
    out = Path(__file__).parent / "results" / "difficulty.json"
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
