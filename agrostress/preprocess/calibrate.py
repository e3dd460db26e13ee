"""Calibrate the photochemical filter against the simulator's truth (true LAI and Cab).

Samples are *clear* observations (cloud-mask policy, dilation included) of wheat pixels at
least one pixel inside their field (edge pixels mix with neighbours through misregistration):

* soil-line slope g: regression through the origin of NIR on Red over clear observations of
  bare-soil pixels (``land_cover == 3`` interiors with true LAI < 0.05; wheat with true LAI <
  0.05 when there are none);
* CLAIR α and WDVI∞: robust least squares (soft-L1) of the *inverted* LAI against true green
  LAI, so the fit minimises the error of the quantity models use;
* LCC = a·ln(ratio) + b: ordinary least squares of true Cab on ln(ratio), over observations
  with true green LAI ≥ ``lcc_min_lai`` (chlorophyll is not observable over bare soil), for
  each candidate ratio of the TCARI/OSAVI family; the best on the calibration scenes wins.

Fit statistics (Pearson r, RMSE) are computed on separate evaluation scenes and stored with
the parameters. Run::

    python -m agrostress.preprocess.calibrate --seeds 1 2 --eval-seeds 3
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from agrostress.preprocess.indices import compute_index
from agrostress.preprocess.mask import CloudMaskPolicy, scl_valid
from agrostress.preprocess.photochemical import (
    PARAMS_FILE,
    PhotochemicalFilter,
    PhotochemicalParams,
)

WHEAT, BARE = 1, 3
RATIO_CANDIDATES: tuple[str, ...] = ("TCARIOSAVI", "TCARIOSAVI705", "MCARIOSAVI705")
"""The TCARI/OSAVI family: Haboudane 2002 (B03/B04/B05/B08) and the red-edge variants of
Wu et al. 2008 (B03/B05/B06)."""
LCC_MIN_LAI = 0.5


def samples(ds: xr.Dataset, policy: CloudMaskPolicy | None = None) -> dict[str, Any]:
    """Clear wheat-interior observations (bands, true LAI, Cab) and clear bare-soil Red/NIR."""
    from scipy import ndimage

    for v in ("true_lai", "true_cab"):
        if v not in ds:
            raise ValueError(f"calibration needs the simulator's truth variable '{v}'")
    policy = policy or CloudMaskPolicy()
    ok = scl_valid(np.asarray(ds["scl"].transpose("time", "y", "x").values), policy)
    refl = np.asarray(ds["reflectance"].transpose("time", "band", "y", "x").values)
    ok &= np.isfinite(refl).all(axis=1)
    lai = np.asarray(ds["true_lai"].transpose("time", "y", "x").values)
    cover = np.asarray(ds["land_cover"].values) if "land_cover" in ds else None
    wheat = cover == WHEAT if cover is not None else np.asarray(ds["field_id"].values) > 0
    inner = ndimage.binary_erosion(wheat, iterations=1)
    sel = ok & inner[None]
    names = [str(b) for b in ds["band"].values]
    out: dict[str, Any] = {
        "bands": {b: refl[:, i][sel] for i, b in enumerate(names)},
        "lai": lai[sel],
        "cab": np.asarray(ds["true_cab"].transpose("time", "y", "x").values)[sel],
    }
    if cover is not None and (cover == BARE).any():
        # bare parcels' interiors without weeds (fallow greens up in summer)
        soil = ok & ndimage.binary_erosion(cover == BARE, iterations=1)[None] & (lai < 0.05)
    else:
        soil = ok & inner[None] & (lai < 0.05)
    out["soil_red"] = refl[:, names.index("B04")][soil]
    out["soil_nir"] = refl[:, names.index("B08")][soil]
    return out


def merge(parts: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Concatenate sample sets from several scenes."""
    parts = list(parts)
    out: dict[str, Any] = {
        k: np.concatenate([p[k] for p in parts]) for k in ("lai", "cab", "soil_red", "soil_nir")
    }
    out["bands"] = {b: np.concatenate([p["bands"][b] for p in parts]) for b in parts[0]["bands"]}
    return out


def fit_soil_line(red: np.ndarray, nir: np.ndarray) -> float:
    """Soil-line slope g = Σ NIR·Red / Σ Red² (a line through the origin)."""
    m = np.isfinite(red) & np.isfinite(nir) & (red > 0)
    if m.sum() < 10:
        raise ValueError("too few bare-soil observations to fit the soil line")
    red, nir = red[m].astype(float), nir[m].astype(float)
    return float((red * nir).sum() / (red * red).sum())


def fit_clair(wdvi: np.ndarray, lai: np.ndarray, lai_max: float = 8.0) -> tuple[float, float]:
    """α, WDVI∞ minimising the soft-L1 error of LAI = −ln(1 − WDVI/WDVI∞)/α."""
    from scipy import optimize

    m = np.isfinite(wdvi) & np.isfinite(lai)
    w, y = wdvi[m].astype(float), lai[m].astype(float)

    def resid(p: np.ndarray) -> np.ndarray:
        a, winf = p
        x = np.clip(w / winf, 0, 1 - np.exp(-a * lai_max))
        return -np.log1p(-x) / a - y

    sol = optimize.least_squares(
        resid, [0.4, 0.5], bounds=([0.02, 0.05], [3.0, 2.0]), loss="soft_l1", f_scale=0.5
    )
    return float(sol.x[0]), float(sol.x[1])


def fit_log(ratio: np.ndarray, cab: np.ndarray) -> tuple[float, float]:
    """a, b of Cab = a·ln(ratio) + b by least squares over positive finite ratios."""
    m = np.isfinite(ratio) & (ratio > 0) & np.isfinite(cab)
    if m.sum() < 10:
        raise ValueError("too few positive ratio values to fit the chlorophyll model")
    x = np.log(ratio[m].astype(float))
    coef, *_ = np.linalg.lstsq(np.c_[x, np.ones_like(x)], cab[m].astype(float), rcond=None)
    return float(coef[0]), float(coef[1])


def _stats(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float, int]:
    m = np.isfinite(pred) & np.isfinite(truth)
    p, t = pred[m].astype(float), truth[m].astype(float)
    return float(np.corrcoef(p, t)[0, 1]), float(np.sqrt(np.mean((p - t) ** 2))), int(m.sum())


def evaluate(
    params: PhotochemicalParams, data: dict[str, Any], lcc_min_lai: float = LCC_MIN_LAI
) -> dict[str, float]:
    """r and RMSE of the filter's LAI (all samples) and LCC (true LAI ≥ lcc_min_lai)."""
    filt = PhotochemicalFilter(params)
    lai = filt.lai(data["bands"])
    lcc = filt.lcc(data["bands"])
    lai_r, lai_rmse, n_lai = _stats(lai, data["lai"])
    canopy = data["lai"] >= lcc_min_lai
    lcc_r, lcc_rmse, n_lcc = _stats(lcc[canopy], data["cab"][canopy])
    return {
        "lai_r": round(lai_r, 4),
        "lai_rmse": round(lai_rmse, 4),
        "n_lai": n_lai,
        "lcc_r": round(lcc_r, 4),
        "lcc_rmse": round(lcc_rmse, 3),
        "n_lcc": n_lcc,
    }


def fit(
    data: dict[str, Any],
    *,
    candidates: Sequence[str] = RATIO_CANDIDATES,
    lcc_min_lai: float = LCC_MIN_LAI,
    version: str = "1",
) -> tuple[PhotochemicalParams, dict[str, dict[str, float]]]:
    """Fit all constants on ``data``; returns the parameters and per-candidate LCC fits."""
    g = fit_soil_line(data["soil_red"], data["soil_nir"])
    wdvi = compute_index("WDVI", data["bands"], {"sla": g})
    alpha, winf = fit_clair(wdvi, data["lai"])
    canopy = data["lai"] >= lcc_min_lai
    sub = {b: v[canopy] for b, v in data["bands"].items()}
    best: PhotochemicalParams | None = None
    per: dict[str, dict[str, float]] = {}
    for name in candidates:
        a, b = fit_log(compute_index(name, sub), data["cab"][canopy])
        p = PhotochemicalParams(
            version=version,
            soil_line_slope=g,
            alpha=alpha,
            wdvi_inf=winf,
            a=a,
            b=b,
            lcc_index=name,
        )
        stats = evaluate(p, data, lcc_min_lai)
        per[name] = {
            "a": round(a, 4),
            "b": round(b, 4),
            "lcc_r": stats["lcc_r"],
            "lcc_rmse": stats["lcc_rmse"],
        }
        if best is None or stats["lcc_r"] > per[best.lcc_index]["lcc_r"]:
            best = p
    assert best is not None
    return best, per


def simulate(seed: int, size: int, fields: int, difficulty: str) -> xr.Dataset:
    from agrostress.simulate import SimulationConfig, simulate_scene

    ds, _ = simulate_scene(
        SimulationConfig(fields=fields, size=size, seed=seed, difficulty=difficulty)
    )
    return ds


def calibrate(
    seeds: Sequence[int] = (1, 2),
    eval_seeds: Sequence[int] = (3,),
    *,
    size: int = 128,
    fields: int = 12,
    difficulty: str = "benchmark",
    version: str | None = None,
    log: Any = print,
) -> PhotochemicalParams:
    """Simulate calibration and evaluation scenes, fit, and return versioned parameters."""
    train, test = [], []
    sim_version = None
    for s in seeds:
        log(f"simulating calibration scene seed={s} ({size}×{size} px, {difficulty})")
        ds = simulate(s, size, fields, difficulty)
        sim_version = ds.attrs.get("simulator_version")
        train.append(samples(ds))
    for s in eval_seeds:
        log(f"simulating evaluation scene seed={s}")
        test.append(samples(simulate(s, size, fields, difficulty)))
    data = merge(train)
    version = version or f"1.{dt.date.today():%Y%m%d}"
    params, per = fit(data, version=version)
    in_sample = evaluate(params, data)
    held_out = evaluate(params, merge(test)) if test else {}
    fit_info = {
        **(held_out or in_sample),
        "evaluated_on": "held-out scenes" if held_out else "calibration scenes",
        "in_sample": in_sample,
        "lcc_candidates_in_sample": per,
        "lcc_min_lai": LCC_MIN_LAI,
        "samples": "clear observations (default cloud mask) of wheat pixels ≥1 px inside fields",
        "seeds": list(seeds),
        "eval_seeds": list(eval_seeds),
        "size": size,
        "fields": fields,
        "difficulty": difficulty,
        "simulator_version": sim_version,
        "date": dt.date.today().isoformat(),
        "command": "python -m agrostress.preprocess.calibrate "
        f"--seeds {' '.join(map(str, seeds))} --eval-seeds {' '.join(map(str, eval_seeds))} "
        f"--size {size} --fields {fields} --difficulty {difficulty}",
    }
    return replace(params, fit=fit_info)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--eval-seeds", type=int, nargs="*", default=[3])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--fields", type=int, default=12)
    ap.add_argument("--difficulty", default="benchmark")
    ap.add_argument("--version", default=None)
    ap.add_argument("--out", type=Path, default=PARAMS_FILE, help="parameter file to write")
    ap.add_argument("--dry-run", action="store_true", help="print, do not write")
    a = ap.parse_args(argv)
    params = calibrate(
        a.seeds,
        a.eval_seeds,
        size=a.size,
        fields=a.fields,
        difficulty=a.difficulty,
        version=a.version,
    )
    f = params.fit
    print(
        f"g={params.soil_line_slope:.4f} alpha={params.alpha:.4f} wdvi_inf={params.wdvi_inf:.4f} "
        f"LCC={params.a:.3f}·ln({params.lcc_index})+{params.b:.3f}"
    )
    print(
        f"{f['evaluated_on']}: LAI r={f['lai_r']:.3f} RMSE={f['lai_rmse']:.3f} (n={f['n_lai']}); "
        f"LCC r={f['lcc_r']:.3f} RMSE={f['lcc_rmse']:.2f} µg/cm² (n={f['n_lcc']})"
    )
    for name, s in f["lcc_candidates_in_sample"].items():
        print(f"  candidate {name}: in-sample LCC r={s['lcc_r']:.3f} RMSE={s['lcc_rmse']:.2f}")
    if not a.dry_run:
        print(f"wrote {params.save(a.out)}")


if __name__ == "__main__":
    main()
