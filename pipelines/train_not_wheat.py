"""Recipe: the built-in not-wheat detector ``models/not_wheat``.

    python -m pipelines.train_not_wheat [--out models/not_wheat] [--train-scenes 64]

Samples wheat and every other land cover from the simulated training regions of
``pipelines.train_default`` (created when missing), each pixel over the whole season or cut at a
random date; fits a random forest on the shipped model's features (so an analysis reuses them);
holds out the last fifth of the scenes to choose the threshold on p(not wheat) that keeps
``--keep-wheat`` of their wheat, and writes the checkpoint with its validation figures.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console

from agrostress.analysis.not_wheat import CLASS_NAMES, NotWheatDetector
from agrostress.models import ForestModel, LoadedModel, ModelCard, save
from agrostress.preprocess import NormStats
from agrostress.simulate.landcover import COVER_NAMES
from agrostress.training.not_wheat import load_cover_data
from pipelines.train_default import FEATURES, GRID, TRAIN_SEEDS, scene_paths

console = Console()


def cover_report(p: np.ndarray, y: np.ndarray, cover: np.ndarray, threshold: float) -> dict:
    """Share called not wheat per land cover, wheat kept, not-wheat caught."""
    called = p >= threshold
    per = {COVER_NAMES.get(int(c), str(c)): float(called[cover == c].mean())
           for c in np.unique(cover)}
    return {"wheat_kept": float(1 - called[y == 0].mean()),
            "not_wheat_caught": float(called[y == 1].mean()),
            "called_not_wheat_by_cover": per, "n": int(len(y))}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("models/not_wheat"))
    ap.add_argument("--data-dir", type=Path, default=Path("agrostress-data/sim"))
    ap.add_argument("--train-scenes", type=int, default=64, help="the first N training seeds")
    ap.add_argument("--pixels", type=int, default=400, help="pixels per scene")
    ap.add_argument("--features", default=FEATURES)
    ap.add_argument("--grid", default=GRID)
    ap.add_argument("--trees", type=int, default=60)
    ap.add_argument("--depth", type=int, default=14)
    ap.add_argument("--keep-wheat", type=float, default=0.97,
                    help="share of the validation wheat the threshold keeps")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--paths", type=Path, nargs="+", default=None,
                    help="simulated regions to train on instead of the training seeds")
    args = ap.parse_args(argv)
    paths = args.paths or scene_paths("train", TRAIN_SEEDS[: args.train_scenes], args.data_dir,
                                      128, 12)
    t0 = time.perf_counter()
    data = load_cover_data(paths, args.features, args.grid, pixels=args.pixels, seed=args.seed)
    console.print(f"{len(data.y):,} pixels from {len(paths)} scenes "
                  f"({time.perf_counter() - t0:.0f} s features)")
    n_val = max(1, len(paths) // 5)
    val = data.scene >= len(paths) - n_val
    tr = ~val
    names = list(data.spec.names)
    norm = NormStats.fit(data.x[tr].reshape(-1, data.x.shape[-1]), names)
    card = ModelCard(
        name="not_wheat", architecture="random_forest",
        config={"n_estimators": args.trees, "max_depth": args.depth},
        n_features=len(names), n_steps=data.x.shape[1], feature_spec=names, grid=args.grid,
        normalisation=norm.to_dict(), class_names=list(CLASS_NAMES),
        training={"data": f"{len(paths)} simulated regions ({paths[0].name}..{paths[-1].name}), "
                          f"{args.pixels} pixels each, 40 % whole seasons, the others cut at a "
                          "random date",
                  "pixels_train": int(tr.sum()), "pixels_val": int(val.sum()),
                  "recipe": " ".join(["python -m pipelines.train_not_wheat",
                                      *(sys.argv[1:] if argv is None else argv)])},
    )
    detector = NotWheatDetector(LoadedModel(card=card, module=None, norm=norm), 0.5)
    t0 = time.perf_counter()
    forest = ForestModel.fit(detector.inputs(data.x[tr], data.steps[tr]), data.y[tr],
                             n_estimators=args.trees, max_depth=args.depth, seed=args.seed)
    detector.model.module = forest
    console.print(f"forest fitted in {time.perf_counter() - t0:.0f} s")
    p = detector.probability(data.x[val], data.steps[val])
    wheat_p = p[data.y[val] == 0]
    threshold = float(np.quantile(wheat_p, args.keep_wheat)) if len(wheat_p) else 0.5
    threshold = min(max(threshold, 0.5), 0.99)  # never call a pixel not wheat on a coin toss
    whole = data.steps[val] == data.x.shape[1]
    card.calibration = {"not_wheat_threshold": threshold}
    card.metrics = {
        "validation": {
            "scenes": n_val, "threshold": threshold,
            "all": cover_report(p, data.y[val], data.cover[val], threshold),
            "whole_season": cover_report(p[whole], data.y[val][whole],
                                         data.cover[val][whole], threshold),
            "season_cut": cover_report(p[~whole], data.y[val][~whole],
                                       data.cover[val][~whole], threshold),
        }
    }
    save(forest, card, args.out)
    v = card.metrics["validation"]["all"]
    console.print(f"[green]✓[/] {args.out}: threshold {threshold:.3f}; validation wheat kept "
                  f"{v['wheat_kept']:.3f}, not wheat caught {v['not_wheat_caught']:.3f}")
    for name, share in v["called_not_wheat_by_cover"].items():
        console.print(f"  {name:14s} called not wheat {share:.3f}")


if __name__ == "__main__":
    main()
