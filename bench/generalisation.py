"""Generalisation: each model on data its training never saw, in one table.

    python bench/generalisation.py --model shipped=models/ffdnn \\
        --model heldout=agrostress-data/models/heldout:in \\
        --model paper=agrostress-data/models/paper:in [--real ../shared/real/...npz]

``NAME=DIR`` is a checkpoint trained on all simulator domains (its test scenes are all
in-domain); ``NAME=DIR:old`` one trained on the previous simulator (all of today's scenes are
new to it); ``NAME=DIR:in`` one trained only on the domains the held-out protocol keeps
(``pipelines.train_default.held_out``: scenes north of 52 °N, drought years and one-orbit
calendars are held out), reported on the test scenes of its own domains (in-domain) and on the
held-out ones. Every model also runs on the real WorldCereal France 2023 points (each point
one field; the same cube as ``../shared/tools/real_check.py``).

Simulated rows: independent test scenes (seeds 2000–2035), the balanced training prior (the
scenes are one third of each class), pixel and field OA, field macro-F1, pixel ECE, and with
abstention the share of fields called (coverage) and the accuracy of those calls. Real rows:
the product's default priors and abstention, the share of wheat points called healthy /
nitrogen deficiency / yellow rust / uncertain / too little data, healthy among the wheat
points with a stress call, rust calls at confidence ≥ 0.8, and non-wheat points given a
wheat class. Results go to ``bench/results/generalisation.json``.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from pyproj import CRS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agrostress.analysis import analyse  # noqa: E402
from agrostress.decision import DecisionPolicy, policy_from  # noqa: E402
from agrostress.models import load, save  # noqa: E402
from agrostress.training import evaluate_model  # noqa: E402
from pipelines.train_default import TEST_SEEDS, held_out, scene_domain  # noqa: E402

REAL = ROOT.parent / "shared" / "real" / "worldcereal_fra2023_dekadal_L2A.npz"
STRESS = ("healthy", "nitrogen_deficiency", "yellow_rust")


def real_cube(npz: Path) -> tuple[xr.Dataset, list[str]]:
    """The real points as a cube: each point a 5×5 block of identical pixels and one field
    (B8A, missing upstream, from B08), dekads dated at their 6th day, Feb–Aug 2023."""
    z = np.load(npz, allow_pickle=False)
    dates = pd.to_datetime(z["dates"]) + pd.Timedelta(days=5, hours=10, minutes=50)
    keep = (dates >= "2023-02-01") & (dates <= "2023-08-10")
    raw = z["refl_dn"][:, keep]
    refl_pts = raw.astype(np.float32) / 10000.0
    refl_pts[raw == z["nodata"]] = np.nan
    bands = [str(b) for b in z["bands"]]
    refl_pts[:, :, bands.index("B8A")] = refl_pts[:, :, bands.index("B08")]
    n, t, b = refl_pts.shape
    side = int(np.ceil(np.sqrt(n)))
    h = w = side * 6
    refl = np.full((t, b, h, w), np.nan, np.float32)
    scl = np.zeros((t, h, w), np.uint8)
    fid = np.zeros((h, w), np.int32)
    for k in range(n):
        r0, c0 = (k // side) * 6, (k % side) * 6
        ok = np.isfinite(refl_pts[k]).all(axis=1)
        refl[ok, :, r0:r0 + 5, c0:c0 + 5] = refl_pts[k, ok][:, :, None, None]
        scl[ok, r0:r0 + 5, c0:c0 + 5] = 4
        fid[r0:r0 + 5, c0:c0 + 5] = k + 1
    crs = CRS.from_epsg(32631)
    x0, y0 = 300000.0, 5300000.0
    ds = xr.Dataset(
        {"reflectance": (("time", "band", "y", "x"), refl), "scl": (("time", "y", "x"), scl),
         "field_id": (("y", "x"), fid)},
        coords={"time": dates[keep].values, "band": bands, "y": y0 - 10 * np.arange(h) - 5,
                "x": x0 + 10 * np.arange(w) + 5, "platform": ("time", ["S2A"] * t)})
    attrs = crs.to_cf()
    attrs["spatial_ref"] = crs.to_wkt()
    attrs["GeoTransform"] = f"{x0} 10 0 {y0} 0 -10"
    ds["spatial_ref"] = xr.DataArray(0, attrs=attrs)
    for v in ("reflectance", "scl", "field_id"):
        ds[v].attrs["grid_mapping"] = "spatial_ref"
    return ds, [str(c) for c in z["croptype28"]]


def real_row(model, cube: xr.Dataset, crops: list[str], policy: DecisionPolicy) -> dict:
    """Calls on the real points under the product's decision policy."""
    res = analyse(cube, model, decision=policy, trajectory_features=None)
    wheat = collections.Counter()
    rust_confident = 0
    other = given = 0
    for f in res.fields:
        crop = crops[int(f.field_id) - 1]
        call = f.call or "too_little_data"
        if crop == "wheat":
            wheat[call] += 1
            rust_confident += call == "yellow_rust" and f.confidence >= 0.8
        else:
            other += 1
            given += call in STRESS
    n = sum(wheat.values())
    stress_calls = sum(wheat[c] for c in STRESS)
    return {
        "wheat_points": n,
        "wheat_calls": dict(wheat),
        "wheat_healthy_of_called": wheat["healthy"] / stress_calls if stress_calls else None,
        "wheat_coverage": stress_calls / max(1, n - wheat["too_little_data"]),
        "wheat_rust_conf_ge_0.8": int(rust_confident),
        "non_wheat_given_wheat_class": given / max(1, other),
        "reference": res.meta.get("reference"),
    }


def sim_row(model, scenes: list[Path], policy: DecisionPolicy) -> dict:
    rep = evaluate_model(model, scenes, decision=policy)
    ab = rep["abstention"]["field"]
    return {"scenes": len(scenes), "fields": rep["field"]["n"],
            "pixel_oa": rep["pixel"]["overall_accuracy"],
            "field_oa": rep["field"]["overall_accuracy"],
            "field_macro_f1": rep["field"]["macro_f1"], "pixel_ece": rep["pixel"]["ece"],
            "field_coverage": ab["coverage"], "field_accuracy_called": ab["accuracy_called"],
            "field_confusion": rep["field"]["confusion"],
            "coverage_curve": rep["abstention"]["field_curve"]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True, help="NAME=DIR or NAME=DIR:in")
    ap.add_argument("--data-dir", type=Path, default=ROOT / "agrostress-data" / "sim")
    ap.add_argument("--real", type=Path, default=REAL)
    ap.add_argument("--record", action="append", default=[],
                    help="write this model's row into its card (metrics.generalisation)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "generalisation.json")
    args = ap.parse_args(argv)
    scenes = [args.data_dir / f"test_{s}.zarr" for s in TEST_SEEDS]
    missing = [p for p in scenes if not p.exists()]
    if missing:
        sys.exit(f"missing test scenes ({len(missing)}, e.g. {missing[0]}): "
                 "python -m pipelines.train_default simulates them")
    is_out = {p: held_out(scene_domain(p)) for p in scenes}
    inside = [p for p in scenes if not is_out[p]]
    outside = [p for p in scenes if is_out[p]]
    sim_policy = policy_from("training", 0.6, 1.0)
    real_policy = DecisionPolicy()
    cube, crops = real_cube(args.real) if args.real.exists() else (None, [])
    rows = []
    for spec in args.model:
        name, _, where = spec.partition("=")
        path, _, trained = where.partition(":")
        model = load(path)
        row = {"model": name, "path": path,
               "trained_on": {"in": "held-in domains", "old": "previous simulator"}.get(
                   trained, "all domains")}
        if trained == "in":
            row["in_domain"] = sim_row(model, inside, sim_policy)
            row["held_out"] = sim_row(model, outside, sim_policy)
        elif trained == "old":
            row["held_out"] = sim_row(model, scenes, sim_policy)
        else:
            row["in_domain"] = sim_row(model, scenes, sim_policy)
        if cube is not None:
            row["real"] = real_row(model, cube, crops, real_policy)
        rows.append(row)
        print(json.dumps(row, indent=1, default=str), flush=True)
        if name in args.record:
            model.card.metrics["generalisation"] = json.loads(json.dumps(row, default=str))
            save(model.module, model.card, path)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=args.out.parent, delete=False, suffix=".tmp") as f:
        json.dump({"held_out_rule": "latitude >= 52 or drought or one orbit",
                   "scenes_in": [p.stem for p in inside], "scenes_out": [p.stem for p in outside],
                   "rows": rows}, f, indent=1, default=str)
    Path(f.name).replace(args.out)
    print(table(rows))


def table(rows: list[dict]) -> str:
    """Markdown table of the rows."""
    head = ("| model | trained on | set | pixel OA | field OA | field macro-F1 | pixel ECE | "
            "fields called | accuracy called |\n|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        for key, label in (("in_domain", "in-domain"), ("held_out", "held-out domains")):
            if key not in r:
                continue
            m = r[key]
            lines.append(f"| {r['model']} | {r['trained_on']} | {label} ({m['fields']} fields) | "
                         f"{m['pixel_oa']:.3f} | {m['field_oa']:.3f} | {m['field_macro_f1']:.3f} | "
                         f"{m['pixel_ece']:.3f} | {100 * m['field_coverage']:.0f} % | "
                         f"{m['field_accuracy_called']:.3f} |")
        if "real" in r:
            q = r["real"]
            calls = ", ".join(f"{k} {v}" for k, v in sorted(q["wheat_calls"].items()))
            share = q["wheat_healthy_of_called"]
            lines.append(f"| {r['model']} | {r['trained_on']} | real wheat ({q['wheat_points']}): "
                         f"{calls} | healthy of called "
                         f"{'—' if share is None else f'{100 * share:.0f} %'} | rust ≥ 0.8: "
                         f"{q['wheat_rust_conf_ge_0.8']} | non-wheat given a wheat class "
                         f"{100 * q['non_wheat_given_wheat_class']:.0f} % | | | |")
    lines += ["", "Fields called against accuracy, as the confidence threshold moves (held-out "
              "domains where the model has them, else its in-domain scenes):", "",
              "| model | " + " | ".join(f"≥ {c['min_confidence']:.1f}" for c in
                                      _curve(rows[0])) + " |",
              "|---|" + "---|" * len(_curve(rows[0]))]
    for r in rows:
        lines.append(f"| {r['model']} | " + " | ".join(
            f"{100 * c['coverage']:.0f} %: {c['accuracy_called']:.3f}" for c in _curve(r)) + " |")
    return "\n".join(lines)


def _curve(row: dict) -> list[dict]:
    return (row.get("held_out") or row["in_domain"])["coverage_curve"]


if __name__ == "__main__":
    main()
