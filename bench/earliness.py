"""Earliness: how soon, and how reliably, a model calls each field during the season.

    python bench/earliness.py [--model shipped=models/ffdnn] [--model previous=DIR] \\
        [--scenes 36] [--every 5] [--first 100] [--last 200]

Each independent simulated test scene (seeds 2000–2035: every simulator domain — latitude,
weather year, calendar) is cut at every ``--every`` days from DOY ``--first`` to ``--last``
and analysed as of that date through :func:`agrostress.analysis.analyse` (the acquisitions
after it dropped, the later grid steps masked), with the balanced training prior (the scenes
are one third of each class). A field is **decidable** at a cut when it is healthy, or its
stress began long enough before (nitrogen deficiency ≥ 10 days, yellow rust ≥ 7 days: the
simulator's onsets, ``agrostress.training.season.VISIBLE_AFTER_DAYS``). Per cut (the table
shows every 10 days):

* accuracy over the decidable fields that got a call, and over all decidable fields (an
  abstention counted as a miss);
* the share of decidable fields called "too early" (and "uncertain");
* early false alarms: stressed fields not yet symptomatic called with a stress class — as a
  share of all fields (the target: ≤ 5 %) and of the not-yet-symptomatic ones (healthy fields
  called stressed count against the accuracy);
* detection delay of yellow rust (and nitrogen deficiency): days from the onset to the first
  cut whose correct call then holds at every later cut (fields never detected are counted
  apart).

Anchor: ELECTS (Rußwurm et al. 2023), end-to-end learned early classification of satellite
time series. Results go to ``bench/results/earliness.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agrostress.analysis import analyse  # noqa: E402
from agrostress.cube import CLASS_NAMES, open_cube  # noqa: E402
from agrostress.decision import DecisionPolicy  # noqa: E402
from agrostress.models import load  # noqa: E402
from agrostress.training.season import (  # noqa: E402
    VISIBLE_AFTER_DAYS,
    doy_date,
    read_onsets,
)
from pipelines.train_default import TEST_SEEDS  # noqa: E402

STRESSED = set(CLASS_NAMES[1:])


def scene_calls(model, path: Path, cuts: list[int], decision: DecisionPolicy) -> list[dict]:
    """Every field of one scene: truth, onset and its call at each cut."""
    cube = open_cube(path).load()
    onsets = read_onsets(path)
    year = int(np.bincount(cube["time"].dt.year.values).argmax())
    fields: dict[int, dict] = {}
    for cut in cuts:
        try:
            r = analyse(cube, model, as_of=doy_date(year, cut), decision=decision,
                        trajectory_features=None, timeline=False)
        except ValueError as e:  # nothing acquired yet, or the grid not reached
            print(f"  {path.stem} DOY {cut}: {e}", file=sys.stderr)
            continue
        for row in r.fields:
            fid = int(row.field_id)
            f = fields.setdefault(fid, {"field": fid, "truth": row.true_label,
                                        "onset": onsets.get(fid), "calls": {}})
            f["calls"][cut] = row.call
    return [f for f in fields.values() if f["truth"] is not None]


def decidable(f: dict, cut: int) -> bool:
    if f["truth"] == "healthy":
        return True
    lag = VISIBLE_AFTER_DAYS[CLASS_NAMES.index(f["truth"])]
    return f["onset"] is not None and cut >= f["onset"] + lag


def delay(f: dict, cuts: list[int]) -> float | None:
    """Days from onset to the first cut whose correct call holds at every later cut."""
    calls = [f["calls"].get(c) for c in cuts]
    first = None
    for i in range(len(cuts) - 1, -1, -1):
        if calls[i] != f["truth"]:
            break
        first = cuts[i]
    if first is None or calls[-1] != f["truth"]:
        return None
    return max(0.0, first - f["onset"])


def table(fields: list[dict], cuts: list[int]) -> list[dict]:
    rows = []
    for cut in cuts:
        dec = [f for f in fields if cut in f["calls"] and decidable(f, cut)]
        early = [f for f in fields if cut in f["calls"] and not decidable(f, cut)]
        called = [f for f in dec if f["calls"][cut] in CLASS_NAMES]
        correct = sum(f["calls"][cut] == f["truth"] for f in called)
        n_all = sum(cut in f["calls"] for f in fields)
        alarms = [f for f in early if f["calls"][cut] in STRESSED]
        rows.append({
            "doy": cut,
            "fields": n_all,
            "decidable": len(dec),
            "accuracy_called": correct / len(called) if called else None,
            "accuracy_all": correct / len(dec) if dec else None,
            "too_early_share": sum(f["calls"][cut] == "too_early" for f in dec) / len(dec)
            if dec else None,
            "uncertain_share": sum(f["calls"][cut] == "uncertain" for f in dec) / len(dec)
            if dec else None,
            "not_yet_symptomatic": len(early),
            "early_false_alarms_of_fields": len(alarms) / n_all
            if n_all else None,
            "early_false_alarms_of_presymptomatic": len(alarms) / len(early) if early else None,
        })
    return rows


def delays(fields: list[dict], cuts: list[int], cls: str) -> dict:
    fs = [f for f in fields if f["truth"] == cls and f["onset"] is not None
          and f["onset"] <= cuts[-1]]
    d = [delay(f, cuts) for f in fs]
    got = [x for x in d if x is not None]
    return {"fields": len(fs), "detected": len(got),
            "median_days": float(np.median(got)) if got else None,
            "p75_days": float(np.percentile(got, 75)) if got else None}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", action="append", default=None, help="NAME=DIR (repeatable)")
    ap.add_argument("--data-dir", type=Path, default=ROOT / "agrostress-data" / "sim")
    ap.add_argument("--scenes", type=int, default=len(TEST_SEEDS))
    ap.add_argument("--first", type=int, default=100)
    ap.add_argument("--last", type=int, default=200)
    ap.add_argument("--every", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "earliness.json")
    args = ap.parse_args(argv)
    models = dict(m.split("=", 1) for m in (args.model or ["shipped=models/ffdnn"]))
    cuts = list(range(args.first, args.last + 1, args.every))
    paths = [args.data_dir / f"test_{s}.zarr" for s in TEST_SEEDS[: args.scenes]]
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise SystemExit(f"missing test scenes (python -m pipelines.train_default creates "
                         f"them): {missing[:3]}")
    decision = DecisionPolicy(priors=None)  # balanced scenes: the training prior
    results = {"cuts": cuts, "scenes": [p.stem for p in paths], "models": {}}
    for name, path in models.items():
        model = load(path)
        t0 = time.perf_counter()
        fields: list[dict] = []
        for p in paths:
            fields += scene_calls(model, p, cuts, decision)
        rows = table(fields, cuts)
        results["models"][name] = {
            "path": path, "in_season": model.in_season,
            "seconds": round(time.perf_counter() - t0, 1),
            "table": rows,
            "delay_yellow_rust": delays(fields, cuts, "yellow_rust"),
            "delay_nitrogen_deficiency": delays(fields, cuts, "nitrogen_deficiency"),
        }
        print(f"\n{name} ({path}, in-season masking: {model.in_season})")
        print("| DOY | decidable | acc (called) | acc (all) | too early | uncertain "
              "| early false alarms (of fields) | (of pre-symptomatic) |")
        print("|---|---|---|---|---|---|---|---|")
        pct = lambda v: "—" if v is None else f"{100 * v:.0f} %"  # noqa: E731
        num = lambda v: "—" if v is None else f"{v:.3f}"  # noqa: E731
        for r in rows:
            if (r["doy"] - args.first) % 10:
                continue
            print(f"| {r['doy']} | {r['decidable']}/{r['fields']} | {num(r['accuracy_called'])} "
                  f"| {num(r['accuracy_all'])} | {pct(r['too_early_share'])} "
                  f"| {pct(r['uncertain_share'])} | {pct(r['early_false_alarms_of_fields'])} "
                  f"| {pct(r['early_false_alarms_of_presymptomatic'])} |")
        for cls in ("yellow_rust", "nitrogen_deficiency"):
            d = results["models"][name][f"delay_{cls}"]
            print(f"detection delay {cls}: median {d['median_days']} days, p75 {d['p75_days']} "
                  f"({d['detected']} of {d['fields']} fields detected and held)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\n→ {args.out}")


if __name__ == "__main__":
    main()
