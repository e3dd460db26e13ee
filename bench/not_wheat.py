"""Only wheat gets a wheat verdict: the built-in not-wheat detector on simulated mixed regions
and on the real points.

    python bench/not_wheat.py [--model models/ffdnn] [--detector models/not_wheat] \\
        [--scenes 36] [--as-of-doy 140] [--real ../shared/real/...npz]

* **Simulated**: the independent test regions (seeds 2000–2035: every simulator domain; wheat
  fields among maize, winter barley, rapeseed, sunflower, grassland, forest, bare soil, water,
  built-up and the hedges, tracks and strips between parcels), analysed with and without the
  detector over the whole season and as of ``--as-of-doy``: the share of valid not-wheat pixels
  given a wheat class (a stress class; overall and per land cover), the share of wheat pixels
  masked, and the stress pixel accuracy on the wheat kept against the same pixels without the
  detector (the detector must not change the calls it keeps).
* **Real**: the WorldCereal France 2023 points (``shared/real``), as in
  ``../shared/tools/real_check.py``: per crop, the share of points given a wheat class, and
  the wheat points masked.

Results go to ``bench/results/not_wheat.json``.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agrostress.analysis import analyse  # noqa: E402
from agrostress.analysis.not_wheat import NotWheatDetector  # noqa: E402
from agrostress.cube import NOT_WHEAT_CODE, open_cube  # noqa: E402
from agrostress.decision import policy_from  # noqa: E402
from agrostress.models import load  # noqa: E402
from agrostress.simulate.landcover import COVER_NAMES, WHEAT  # noqa: E402
from bench.generalisation import REAL, STRESS, real_cube  # noqa: E402
from pipelines.train_default import TEST_SEEDS  # noqa: E402

WHEAT_CLASSES = (0, 1, 2)


def sim_counts(model, detector, path: Path, as_of: str | None, policy) -> dict:
    """Pixel counts of one region: per cover, valid pixels and those given a wheat class with
    the detector; wheat masked; stress agreement with the labels with and without it."""
    cube = open_cube(path).load()
    cover = np.asarray(cube["land_cover"].values)
    label = np.asarray(cube["label"].values)
    with_d = np.asarray(analyse(cube, model, not_wheat=detector, decision=policy, as_of=as_of,
                                trajectory_features=None, timeline=False).classes.values)
    without = np.asarray(analyse(cube, model, decision=policy, as_of=as_of,
                                 trajectory_features=None, timeline=False).classes.values)
    valid = without != 255
    out: dict = {"cover": {}}
    for c in np.unique(cover[valid]):
        m = valid & (cover == c)
        out["cover"][COVER_NAMES.get(int(c), str(c))] = {
            "valid": int(m.sum()),
            "wheat_class_with": int(np.isin(with_d[m], WHEAT_CLASSES).sum()),
            "wheat_class_without": int(np.isin(without[m], WHEAT_CLASSES).sum())}
    wheat = valid & (cover == WHEAT) & (label >= 0)
    kept = wheat & (with_d != NOT_WHEAT_CODE)
    out["wheat_pixels"] = int(wheat.sum())
    out["wheat_masked"] = int((wheat & (with_d == NOT_WHEAT_CODE)).sum())
    called = kept & np.isin(without, WHEAT_CLASSES)
    out["kept_called"] = int(called.sum())
    out["kept_correct"] = int((without[called] == label[called]).sum())
    all_called = wheat & np.isin(without, WHEAT_CLASSES)
    out["all_called"] = int(all_called.sum())
    out["all_correct"] = int((without[all_called] == label[all_called]).sum())
    return out


def summarise(rows: list[dict]) -> dict:
    covers: dict = collections.defaultdict(lambda: collections.Counter())
    for r in rows:
        for name, c in r["cover"].items():
            covers[name].update(c)
    other = collections.Counter()
    for name, c in covers.items():
        if name != COVER_NAMES[WHEAT]:
            other.update(c)
    tot = {k: sum(r[k] for r in rows) for k in ("wheat_pixels", "wheat_masked", "kept_called",
                                                  "kept_correct", "all_called", "all_correct")}
    return {
        "not_wheat_given_wheat_class": other["wheat_class_with"] / max(1, other["valid"]),
        "not_wheat_given_wheat_class_without_detector":
            other["wheat_class_without"] / max(1, other["valid"]),
        "per_cover": {n: {"valid": c["valid"],
                          "with": c["wheat_class_with"] / max(1, c["valid"]),
                          "without": c["wheat_class_without"] / max(1, c["valid"])}
                      for n, c in sorted(covers.items())},
        "wheat_masked": tot["wheat_masked"] / max(1, tot["wheat_pixels"]),
        "stress_accuracy_wheat_kept": tot["kept_correct"] / max(1, tot["kept_called"]),
        "stress_accuracy_all_wheat": tot["all_correct"] / max(1, tot["all_called"]),
    }


def real_rows(model, detector, npz: Path, policy) -> dict:
    cube, crops = real_cube(npz)
    out = {}
    for name, det in (("with", detector), ("without", None)):
        res = analyse(cube, model, not_wheat=det, decision=policy, trajectory_features=None)
        per: dict = collections.defaultdict(collections.Counter)
        for f in res.fields:
            per[crops[int(f.field_id) - 1]][str(f.call)] += 1
        other = [c for k, c in per.items() if k != "wheat"]
        n_other = sum(sum(c.values()) for c in other)
        given = sum(c[s] for c in other for s in STRESS)
        wheat = per["wheat"]
        out[name] = {
            "non_wheat_given_wheat_class": given / max(1, n_other), "non_wheat_points": n_other,
            "wheat_masked": wheat["not_wheat"], "wheat_points": sum(wheat.values()),
            "wheat_with_data": sum(v for k, v in wheat.items() if k != "None"),
            "wheat_calls": dict(wheat),
            "per_crop_given_wheat_class": {
                k: sum(c[s] for s in STRESS) / max(1, sum(c.values()))
                for k, c in sorted(per.items())},
            "per_crop_points": {k: sum(c.values()) for k, c in sorted(per.items())},
        }
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "ffdnn")
    ap.add_argument("--detector", type=Path, default=ROOT / "models" / "not_wheat")
    ap.add_argument("--data-dir", type=Path, default=ROOT / "agrostress-data" / "sim")
    ap.add_argument("--scenes", type=int, default=len(TEST_SEEDS))
    ap.add_argument("--as-of-doy", type=int, default=140)
    ap.add_argument("--real", type=Path, default=REAL)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "not_wheat.json")
    args = ap.parse_args(argv)
    model, detector = load(args.model), NotWheatDetector.load(args.detector)
    policy = policy_from("default", 0.6, 1.0, 170.0)
    scenes = [args.data_dir / f"test_{s}.zarr" for s in TEST_SEEDS[: args.scenes]]
    t0 = time.perf_counter()
    results: dict = {"model": str(args.model), "detector": str(args.detector),
                     "threshold": detector.threshold, "scenes": len(scenes)}
    for label, doy in (("whole season", None), (f"as of DOY {args.as_of_doy}", args.as_of_doy)):
        rows = []
        for p in scenes:
            year = int(open_cube(p)["time"].dt.year.values[0])
            as_of = None if doy is None else (dt.date(year, 1, 1)
                                              + dt.timedelta(days=doy - 1)).isoformat()
            rows.append(sim_counts(model, detector, p, as_of, policy))
        results[label] = summarise(rows)
    if args.real.exists():
        results["real"] = real_rows(model, detector, args.real, policy)
    results["seconds"] = round(time.perf_counter() - t0, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(table(results))
    print(f"→ {args.out}")


def table(r: dict) -> str:
    lines = ["| set | not wheat given a wheat class (detector) | (without) | wheat masked | "
             "stress accuracy on the wheat kept | (all wheat, no detector) |",
             "|---|---|---|---|---|---|"]
    for k in [k for k in r if k.startswith(("whole", "as of"))]:
        s = r[k]
        lines.append(f"| simulated, {k} | {s['not_wheat_given_wheat_class']:.1%} | "
                     f"{s['not_wheat_given_wheat_class_without_detector']:.1%} | "
                     f"{s['wheat_masked']:.1%} | {s['stress_accuracy_wheat_kept']:.3f} | "
                     f"{s['stress_accuracy_all_wheat']:.3f} |")
    if "real" in r:
        w, wo = r["real"]["with"], r["real"]["without"]
        lines.append(f"| real points ({w['non_wheat_points']} not wheat, {w['wheat_points']} "
                     f"wheat) | {w['non_wheat_given_wheat_class']:.1%} | "
                     f"{wo['non_wheat_given_wheat_class']:.1%} | {w['wheat_masked']} of "
                     f"{w['wheat_with_data']} with data | | |")
    lines += ["", "| land cover | simulated pixels | given a wheat class (detector) | (without) |",
              "|---|---|---|---|"]
    s = r[next(k for k in r if k.startswith("whole"))]
    for name, c in s["per_cover"].items():
        lines.append(f"| {name} | {c['valid']:,} | {c['with']:.1%} | {c['without']:.1%} |")
    if "real" in r:
        w, wo = r["real"]["with"], r["real"]["without"]
        lines += ["", "| real crop | points | given a wheat class (detector) | (without) |",
                  "|---|---|---|---|"]
        for k, n in sorted(w["per_crop_points"].items(), key=lambda kv: -kv[1]):
            lines.append(f"| {k} | {n} | {w['per_crop_given_wheat_class'][k]:.0%} | "
                         f"{wo['per_crop_given_wheat_class'][k]:.0%} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
