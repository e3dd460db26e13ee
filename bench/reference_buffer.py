"""What the REST API's reference buffer costs: one 50 ha field alone, analysed against the
model's built-in reference and against the wheat within a buffer around it.

    python bench/reference_buffer.py [--model models/ffdnn] [--buffer 500 1000] [--repeats 2]

Simulated source, no ingestion cache (every fetch simulates its area afresh); seconds for the
fetch of the buffer, the reference pass over it, and the field's own fetch + analysis.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import geopandas as gpd
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agrostress.analysis import analyse, request_reference  # noqa: E402
from agrostress.ingest.fetch import fetch_cube  # noqa: E402
from agrostress.models import load  # noqa: E402
from agrostress.settings import Settings  # noqa: E402

START, END = "2024-03-01", "2024-07-20"


def field_50ha(lon: float = 1.5, lat: float = 47.0) -> gpd.GeoDataFrame:
    """A 707 m square field (50 ha) in EPSG:4326."""
    sq = gpd.GeoSeries([shapely.box(0, 0, 707, 707)], crs="EPSG:32631")
    centre = gpd.GeoSeries([shapely.Point(lon, lat)], crs="EPSG:4326").to_crs("EPSG:32631")[0]
    sq = sq.translate(centre.x - 353, centre.y - 353).to_crs("EPSG:4326")
    return gpd.GeoDataFrame({"field_id": [1]}, geometry=sq.values, crs="EPSG:4326")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default=str(ROOT / "models" / "ffdnn"))
    ap.add_argument("--buffer", type=float, nargs="+", default=[500.0, 1000.0])
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    model = load(args.model)
    settings = Settings(_env_file=None)
    field = field_50ha()
    geom = field.geometry.iloc[0]
    rows = []
    for buffer_m in [0.0, *args.buffer]:
        times: dict[str, list[float]] = {"buffer fetch": [], "reference": [], "field": []}
        for _ in range(args.repeats):
            ref = None
            if buffer_m:
                wide = field.to_crs(field.estimate_utm_crs()).buffer(buffer_m).to_crs("EPSG:4326")
                t = time.perf_counter()
                cube = fetch_cube("simulated", wide.iloc[0], START, END, settings=settings,
                                  max_area_km2=None, aoi_crs="EPSG:4326")
                times["buffer fetch"].append(time.perf_counter() - t)
                t = time.perf_counter()
                ref = request_reference(cube, model)
                times["reference"].append(time.perf_counter() - t)
            t = time.perf_counter()
            cube = fetch_cube("simulated", geom, START, END, settings=settings,
                              max_area_km2=None, aoi_crs="EPSG:4326")
            res = analyse(cube, model, fields=field, trajectory_features=None,
                          **({"reference": ref} if ref is not None and ref.source == "scene"
                             else {}))
            times["field"].append(time.perf_counter() - t)
        med = {k: statistics.median(v) if v else 0.0 for k, v in times.items()}
        rows.append((buffer_m, med, res.meta["reference"]))
    print("| buffer | buffer fetch s | reference s | field fetch + analysis s | total s | "
          "reference |\n|---|---|---|---|---|---|")
    for b, m, r in rows:
        print(f"| {b:.0f} m | {m['buffer fetch']:.2f} | {m['reference']:.2f} | {m['field']:.2f} | "
              f"{sum(m.values()):.2f} | {r['source']} ({r['pixels']} px, {r['fields']} {r['counted_as']}) |")


if __name__ == "__main__":
    main()
