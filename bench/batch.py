"""Region batch throughput (km²/hour) with 1 and 2 local Dask workers, same run.

    python bench/batch.py                          # 512×512 px region (26 km²), 256 px tiles
    python bench/batch.py --size 1024 --workers 1,2,4 --model models/ffdnn

The region is pre-written as a folder of per-date GeoTIFFs (``--source files``), so the
simulator's cost is not counted: a small simulated scene is repeated to ``--size`` px a side.
Each worker count maps the whole region from scratch (a fresh output folder) with a local cluster of
that many single-threaded worker processes. km²/h is the region area over the tile phase
(cluster start-up excluded, reported apart); stage shares sum the tasks' own timings:
read (files → cube), preprocess (features), model (inference), write (tile COGs), other
(model load, field summaries, …). Results go to ``bench/results/batch.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

START, END = "2024-03-01", "2024-07-20"
ORIGIN = (500000.0, 5320000.0)
FEATURES = ["LAI", "LCC", "NDREI", "MTCI", "S2REP", "REDSI", "PSRI"]
NORM = {
    "features": FEATURES,
    "mean": [2.33, 35.4, 0.57, 2.95, 722.8, 152.1, 0.018],
    "std": [1.1, 9.9, 0.13, 1.29, 4.9, 184.1, 0.041],
    "lo": [0.62, 7.3, 0.21, 0.41, 696.7, -72.4, -0.046],
    "hi": [5.6, 52.1, 0.81, 6.79, 732.3, 1039.2, 0.166],
}


def write_region(work: Path, size: int, base: int, seed: int) -> tuple[Path, Path]:
    """A ``size``² px region as a GeoTIFF folder (a ``base``² px scene repeated) + GeoJSON."""
    import dask.array as da
    import shapely
    from pyproj import Transformer
    from shapely.geometry import box

    from agrostress.cube import build_cube, write_geotiff_folder
    from agrostress.simulate import SimulationConfig, simulate_scene

    ds, _ = simulate_scene(SimulationConfig(fields=8, size=base, seed=seed, origin=ORIGIN))
    reps = -(-size // base)

    def tiled(name: str) -> Any:
        arr = da.from_array(np.asarray(ds[name].values), chunks=-1)
        lead = (1,) * (arr.ndim - 2)
        return da.tile(arr, (*lead, reps, reps))[..., :size, :size]

    x = ORIGIN[0] + 10.0 * (np.arange(size) + 0.5)
    y = ORIGIN[1] - 10.0 * (np.arange(size) + 0.5)
    cube = build_cube(
        tiled("reflectance"),
        tiled("scl"),
        ds["time"].values,
        y,
        x,
        32631,
        platform=[str(p) for p in ds["platform"].values] if "platform" in ds.coords else None,
    )
    folder = write_geotiff_folder(cube, work / "s2")
    inset = 1.0  # keeps the region grid exactly size × size
    poly = box(ORIGIN[0] + inset, ORIGIN[1] - 10 * size + inset,
               ORIGIN[0] + 10 * size - inset, ORIGIN[1] - inset)  # fmt: skip
    t = Transformer.from_crs(32631, 4326, always_xy=True)
    region = work / "region.geojson"
    region.write_text(shapely.to_geojson(shapely.transform(poly, t.transform, interleaved=False)))
    return folder, region


def bench_model(work: Path, model: str | None) -> tuple[Path, str]:
    """The given / default checkpoint, else an untrained FFDNN (same cost per pixel)."""
    from agrostress.settings import get_settings

    for cand in ([Path(model)] if model else []) + [Path(get_settings().model_dir)]:
        if (cand / "card.json").is_file():
            return cand, str(cand)
    import torch

    from agrostress.models import ModelCard, create_model, save
    from agrostress.preprocess import TemporalGrid

    torch.manual_seed(0)
    grid = TemporalGrid.parse("60:200:5")
    module = create_model("ffdnn", n_features=len(FEATURES), n_steps=len(grid), n_classes=3)
    card = ModelCard(
        name="bench-untrained", architecture="ffdnn", config={}, n_features=len(FEATURES),
        n_steps=len(grid), feature_spec=FEATURES, grid=str(grid), normalisation=NORM,
    )  # fmt: skip
    return save(module, card, work / "model"), "untrained ffdnn (default config)"


S2_TILE_KM2 = 110.0 * 110.0
"""One Sentinel-2 granule (MGRS tile)."""


def print_targets(rows: list[dict[str, Any]], baseline: dict[str, Any] | None,
                  rev: str | None) -> None:
    """km²/h per worker count, now and at the baseline commit, the 1 → 2 worker scaling and
    the hours one Sentinel-2 tile takes (targets: ≥ 10,000 km²/h per worker, ≥ 1.8×)."""
    before = {r["workers"]: r for r in (baseline or {}).get("rows", [])}
    print("\n| workers | km²/h now | km²/h per worker | S2 tile (h) |"
          + (f" km²/h at {rev} | speed-up |" if baseline else ""))
    print("|---|---|---|---|" + ("---|---|" if baseline else ""))
    for r in rows:
        n, now = r["workers"], r["km2_per_hour"]
        cells = [str(n), f"{now:,.0f}", f"{now / max(n, 1):,.0f}", f"{S2_TILE_KM2 / now:.2f}"]
        if baseline and n in before:
            old = before[n]["km2_per_hour"]
            cells += [f"{old:,.0f}", f"{now / old:.2f}x"]
        print("| " + " | ".join(cells) + " |")
    by_n = {r["workers"]: r["km2_per_hour"] for r in rows}
    if 1 in by_n and 2 in by_n:
        print(f"1 → 2 workers: {by_n[2] / by_n[1]:.2f}x (target ≥ 1.8x); per worker with one: "
              f"{by_n[1]:,.0f} km²/h (target ≥ 10,000)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=512, help="region side in 10 m pixels")
    ap.add_argument("--tile-size", type=int, default=256)
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    ap.add_argument("--base", type=int, default=96, help="simulated scene side (repeated)")
    ap.add_argument("--model", default=None, help="checkpoint (default: shipped, else untrained)")
    ap.add_argument("--work", default=None, help="keep the data here (default: a temp folder)")
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "batch.json"))
    ap.add_argument("--baseline", default=None, metavar="REV",
                    help="also run this commit's bench/batch.py on the same data, same session")
    args = ap.parse_args()

    from agrostress.batch import run_batch
    from agrostress.batch.run import stage_shares
    from agrostress.settings import get_settings

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="agrostress-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        t = time.perf_counter()
        if (work / "s2" / "cube.json").exists() and (work / "region.geojson").exists():
            folder, region = work / "s2", work / "region.geojson"
        else:
            folder, region = write_region(work, args.size, args.base, args.seed)
        prep_s = time.perf_counter() - t
        model_dir, model_name = bench_model(work, args.model)
        settings = get_settings().model_copy(update={"files_dir": folder})
        rows = []
        for n in [int(v) for v in args.workers.split(",")]:
            shutil.rmtree(work / f"out-{n}", ignore_errors=True)  # map from scratch
            t = time.perf_counter()
            m = run_batch(
                region, START, END, "files", work / f"out-{n}", model_dir,
                tile_size=args.tile_size, workers=n, settings=settings,
            )  # fmt: skip
            wall = time.perf_counter() - t
            run = m.runs[-1]
            km2 = m.summary["km2_done"]
            rows.append(
                {
                    "workers": n,
                    "tiles": len(m.tiles),
                    "failed": m.counts()["failed"],
                    "km2": km2,
                    "tiles_s": run["tiles_s"],
                    "cluster_start_s": run.get("cluster_start_s"),
                    "wall_s": round(wall, 2),
                    "km2_per_hour": round(km2 / run["tiles_s"] * 3600, 1),
                    "km2_per_hour_wall": round(km2 / wall * 3600, 1),
                    "stage_seconds": run["stage_seconds"],
                    "stage_shares": {
                        k: round(v, 3) for k, v in stage_shares(run["stage_seconds"]).items()
                    },
                }
            )
        base = rows[0]["km2_per_hour"]
        print(
            f"\nregion {args.size}×{args.size} px ({rows[0]['km2']:.1f} km²), "
            f"tiles {args.tile_size} px, model: {model_name}; "
            f"{os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}; "
            f"data preparation {prep_s:.0f} s (not counted)\n"
        )
        head = ("workers", "tiles", "tile phase s", "start s", "km²/h", "speed-up",
                "read", "preproc", "reference", "model", "not wheat", "traject.", "write",
                "other")  # fmt: skip
        print(" | ".join(f"{h:>12}" for h in head))
        for r in rows:
            sh = r["stage_shares"]
            cells = [
                r["workers"], r["tiles"], f"{r['tiles_s']:.1f}", f"{r['cluster_start_s']:.1f}",
                f"{r['km2_per_hour']:.1f}", f"{r['km2_per_hour'] / base:.2f}x",
                *(f"{sh.get(k, 0.0):.0%}" for k in ("read", "preprocess", "reference", "model",
                                                     "not_wheat", "trajectories", "write",
                                                     "other")),
            ]  # fmt: skip
            print(" | ".join(f"{c:>12}" for c in cells))
        baseline = None
        if args.baseline:
            import sys

            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
            from bench.baseline import run_on_commit

            base_args = ["--size", str(args.size), "--tile-size", str(args.tile_size),
                         "--workers", args.workers, "--base", str(args.base),
                         "--seed", str(args.seed), "--work", str(work),
                         *(["--model", args.model] if args.model else [])]
            baseline = run_on_commit(args.baseline, "bench/batch.py", base_args, "--out")
        print_targets(rows, baseline, args.baseline)
        result = {
            "benchmark": "batch",
            "baseline": {"commit": args.baseline, "rows": baseline["rows"]} if baseline else None,
            "size_px": args.size,
            "tile_size": args.tile_size,
            "model": model_name,
            "cpus": os.cpu_count(),
            "load_average_1min": round(os.getloadavg()[0], 2),
            "machine": platform.platform(),
            "rows": rows,
        }
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1))
        print(f"\nwritten {out}")
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
