"""Simulator realism: simulated land covers against the real Sentinel-2 L2A series of
``../shared/real`` (WorldCereal, France 2023, dekadal composites), per feature and 10-day period.

    python bench/realism.py [--scenes 6] [--size 96] [--save bench/results/realism.json]
                            [--compare bench/results/realism_before.json]

Both sides are put in the real set's form: clear (SCL-valid) acquisitions of a pixel are
composited to its dekad by the median; simulated scenes are drawn at the real points' latitudes
(43.3–48.8 °N) in 2023 with every other domain draw left random. Features: NDVI, NDREI (a
red-edge NDVI), PSRI, B11, B12 and the photochemical LAI / LCC. For each dekad March–July the
table gives the real and simulated median and 10/90 % quantiles and the two-sample KS
statistic; a period passes when the real median lies inside the simulated 10–90 % band and the
simulated median inside the real one. ``--compare`` prints the summary of an earlier run (e.g.
the simulator before calibration) beside this one.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy.stats import ks_2samp

from agrostress.cube import BANDS
from agrostress.preprocess.indices import compute_index
from agrostress.preprocess.mask import CloudMaskPolicy, scl_valid
from agrostress.preprocess.photochemical import PhotochemicalFilter
from agrostress.simulate import SimulationConfig, simulate_scene

REAL = Path(__file__).resolve().parents[2] / "shared" / "real" / "worldcereal_fra2023_dekadal_L2A.npz"
FEATURES = ("NDVI", "NDREI", "PSRI", "B11", "B12", "LAI", "LCC")
TARGET_FEATURES = ("NDVI", "NDREI", "PSRI")  # the realism target
YEAR = 2023
MONTHS = (3, 4, 5, 6, 7)  # March–July
# real crop class (CROPTYPE28) -> simulated land cover name
COVERS = {"wheat": "wheat", "maize": "maize", "barley": "winter_barley",
          "rapeseed_rape": "rapeseed", "sunflower": "sunflower", "grass_fodder_crops": "grassland"}
console = Console(width=160)


@dataclass
class PeriodStats:
    feature: str
    dekad: str
    n_real: int
    n_sim: int
    real_q: tuple[float, float, float]
    sim_q: tuple[float, float, float]
    ks: float

    @property
    def passes(self) -> bool:
        (r10, r50, r90), (s10, s50, s90) = self.real_q, self.sim_q
        return bool(s10 <= r50 <= s90 and r10 <= s50 <= r90)


def dekads() -> list[np.datetime64]:
    days = (1, 11, 21)
    return [np.datetime64(f"{YEAR}-{m:02d}-{d:02d}") for m in MONTHS for d in days]


def features_of(refl: np.ndarray) -> dict[str, np.ndarray]:
    """Features of reflectance ``(..., band)`` in cube band order."""
    bands = {b: refl[..., i].astype(np.float32) for i, b in enumerate(BANDS)}
    with np.errstate(all="ignore"):
        out = {"NDVI": compute_index("NDVI", bands), "NDREI": compute_index("NDREI", bands),
               "PSRI": compute_index("PSRI", bands), "B11": bands["B11"], "B12": bands["B12"]}
        out.update(PhotochemicalFilter()(bands))
    return out


def load_real() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Real reflectance (points, dekads, band) at ``dekads()``, crop names, latitudes, dekad dates."""
    z = np.load(REAL, allow_pickle=False)
    dates = z["dates"].astype("datetime64[D]")
    want = np.array(dekads())
    idx = [int(np.flatnonzero(dates == d)[0]) for d in want]
    raw = z["refl_dn"][:, idx]
    refl = raw.astype(np.float32) / 10000.0
    refl[raw == z["nodata"]] = np.nan
    bands = [str(b) for b in z["bands"]]
    refl = refl[..., [bands.index(b) for b in BANDS]]
    refl[..., BANDS.index("B8A")] = refl[..., BANDS.index("B08")]  # B8A is missing upstream
    return refl, z["croptype28"].astype(str), z["lat"], want


def dekad_composite(ds, pixels: np.ndarray) -> np.ndarray:
    """Median of the clear acquisitions of each dekad: (pixels, dekads, band)."""
    t = ds.time.values.astype("datetime64[D]")
    refl = ds.reflectance.values.reshape(ds.sizes["time"], len(BANDS), -1)[:, :, pixels]
    ok = scl_valid(ds.scl.values, CloudMaskPolicy()).reshape(ds.sizes["time"], -1)[:, pixels]
    refl = np.where(ok[:, None, :], refl, np.nan)
    out = np.full((pixels.size, len(dekads()), len(BANDS)), np.nan, np.float32)
    for k, d0 in enumerate(dekads()):
        month_end = (d0.astype("datetime64[M]") + 1).astype("datetime64[D]")
        end = d0 + 10 if k % 3 < 2 else month_end
        sel = (t >= d0) & (t < end)
        if sel.any():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: no clear view
                out[:, k] = np.nanmedian(refl[sel], axis=0).T
    return out


def simulated(scenes: int, size: int, latitudes: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Dekadal composites of simulated pixels per land cover (healthy wheat only for wheat)."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[np.ndarray]] = {}
    for s in range(scenes):
        lat = float(rng.choice(latitudes))
        cfg = SimulationConfig(fields=12, size=size, seed=seed + s, year=YEAR, latitude=lat)
        ds, _ = simulate_scene(cfg)
        # simulators before the land covers had no names: wheat and grass only
        cover_names = json.loads(ds["land_cover"].attrs.get("cover_names", "{}")) or {
            "1": "wheat", "2": "grassland"}
        cover = ds["land_cover"].values.ravel()
        label = ds["label"].values.ravel()
        for code, name in cover_names.items():
            sel = cover == int(code)
            if name == "wheat":
                sel &= label == 0
            px = np.flatnonzero(sel)
            if px.size == 0:
                continue
            px = rng.choice(px, min(px.size, 1500), replace=False)
            out.setdefault(name, []).append(dekad_composite(ds, px))
    return {k: np.concatenate(v) for k, v in out.items()}


def compare(real: np.ndarray, sim: np.ndarray) -> list[PeriodStats]:
    fr, fs = features_of(real), features_of(sim)
    rows = []
    for f in FEATURES:
        for k, d in enumerate(dekads()):
            a, b = fr[f][:, k], fs[f][:, k]
            a, b = a[np.isfinite(a)], b[np.isfinite(b)]
            if a.size < 3 or b.size < 3:
                continue
            rq = tuple(float(v) for v in np.quantile(a, [0.1, 0.5, 0.9]))
            sq = tuple(float(v) for v in np.quantile(b, [0.1, 0.5, 0.9]))
            rows.append(PeriodStats(f, str(d), a.size, b.size, rq, sq, float(ks_2samp(a, b).statistic)))
    return rows


def summary(rows: list[PeriodStats]) -> dict[str, dict[str, float]]:
    out = {}
    for f in FEATURES:
        r = [x for x in rows if x.feature == f]
        if r:
            out[f] = {"periods": len(r), "pass": sum(x.passes for x in r),
                      "mean_ks": float(np.mean([x.ks for x in r])),
                      "mean_abs_median_diff": float(np.mean([abs(x.sim_q[1] - x.real_q[1]) for x in r]))}
    return out


def print_detail(cover: str, rows: list[PeriodStats]) -> None:
    t = Table(title=f"{cover}: real | simulated median per dekad (✗: outside the other's 10–90 % band)")
    t.add_column("dekad")
    for f in FEATURES:
        t.add_column(f, justify="right")
    for d in dekads():
        cells = []
        for f in FEATURES:
            r = next((x for x in rows if x.feature == f and x.dekad == str(d)), None)
            if r is None:
                cells.append("–")
                continue
            mark = "" if r.passes else "✗"
            digits = 1 if f in ("LAI", "LCC") else 2
            cells.append(f"{r.real_q[1]:.{digits}f}|{r.sim_q[1]:.{digits}f}{mark}")
        t.add_row(str(d)[5:], *cells)
    console.print(t)


def print_summary(results: dict, before: dict | None) -> None:
    t = Table(title="realism summary: periods passing (real median in simulated 10–90 % band and "
                    "vice versa) / periods, mean KS")
    t.add_column("land cover")
    t.add_column("feature")
    if before:
        t.add_column("before: pass", justify="right")
        t.add_column("before: KS", justify="right")
    t.add_column("pass", justify="right")
    t.add_column("mean KS", justify="right")
    t.add_column("mean |Δ median|", justify="right")
    for cover, summ in results.items():
        for f, s in summ.items():
            row = [cover, f]
            if before:
                b = before.get(cover, {}).get(f)
                row += [f"{b['pass']}/{b['periods']}", f"{b['mean_ks']:.2f}"] if b else ["–", "–"]
            row += [f"{s['pass']}/{s['periods']}", f"{s['mean_ks']:.2f}", f"{s['mean_abs_median_diff']:.3f}"]
            t.add_row(*row)
    console.print(t)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", type=int, default=6)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--seed", type=int, default=7000)
    ap.add_argument("--save", type=Path, default=None, help="write the summary and rows as JSON")
    ap.add_argument("--compare", type=Path, default=None, help="an earlier --save to print beside")
    ap.add_argument("--detail", default="wheat", help="comma list of land covers to print per dekad")
    args = ap.parse_args(argv)
    real, crops, lat, _ = load_real()
    t0 = time.perf_counter()
    sim = simulated(args.scenes, args.size, np.unique(np.round(lat[crops == "wheat"], 1)), args.seed)
    console.print(f"simulated {args.scenes} scenes in {time.perf_counter() - t0:.0f} s")
    results, detail = {}, {}
    for crop, cover in COVERS.items():
        if cover not in sim:
            continue
        rows = compare(real[crops == crop], sim[cover])
        results[cover] = summary(rows)
        detail[cover] = [asdict(r) | {"passes": r.passes} for r in rows]
        if cover in args.detail.split(","):
            print_detail(cover, rows)
    before = json.loads(args.compare.read_text())["summary"] if args.compare else None
    print_summary(results, before)
    wheat = results.get("wheat", {})
    ok = all(wheat.get(f, {}).get("pass") == wheat.get(f, {}).get("periods") for f in TARGET_FEATURES)
    console.print(f"healthy-wheat target (NDVI, NDREI, PSRI pass every dekad Mar–Jul): "
                  f"{'[green]met' if ok else '[red]not met'}")
    if args.save:
        args.save.write_text(json.dumps({"scenes": args.scenes, "size": args.size, "seed": args.seed,
                                         "summary": results, "rows": detail}, indent=1))


if __name__ == "__main__":
    main()
