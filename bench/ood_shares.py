"""How often the shipped model's out-of-distribution score flags pixels (score > 1), by what
they are: the wheat fields of six simulated test scenes (seeds 2000–2005) and the real points
of ``../shared/real`` by crop, each judged against its own scene's wheat reference.

    python bench/ood_shares.py [--model models/ffdnn]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from generalisation import REAL, real_cube  # noqa: E402

from agrostress.models import load  # noqa: E402
from agrostress.preprocess.reference import image_reference  # noqa: E402
from agrostress.training.data import cube_features  # noqa: E402

CROPS = ("wheat", "barley", "rapeseed_rape", "no_temporary_crop", "sunflower", "maize")


def scores(model, cube) -> tuple[np.ndarray, np.ndarray]:
    """OOD score (H, W) against the cube's reference, and the usable field index (0: none)."""
    fs = cube_features(cube, model.spec, model.grid, model.mask_policy, model.regularisation)
    f = np.asarray(fs["features"].transpose("doy", "feature", "y", "x").values)
    fid = np.where(np.asarray(fs["insufficient_data"].values), 0, fs["field_id"].values)
    ref = image_reference(f, fid > 0, fid, model.spec.names, model.grid.doys,
                          model.builtin_reference)
    model.set_reference(ref.series)
    return model.predict_image(f)[1], fid


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default=str(ROOT / "models" / "ffdnn"))
    ap.add_argument("--data-dir", type=Path, default=ROOT / "agrostress-data" / "sim")
    args = ap.parse_args(argv)
    model = load(args.model)
    print("| pixels | flagged (score > 1) | median score |\n|---|---|---|")
    sim = []
    for seed in range(2000, 2006):
        o, fid = scores(model, args.data_dir / f"test_{seed}.zarr")
        sim.append(o[fid > 0])
    o = np.concatenate(sim)
    print(f"| simulated wheat fields | {100 * (o > 1).mean():.1f} % | {np.median(o):.2f} |")
    cube, crops = real_cube(REAL)
    o, fid = scores(model, cube)
    for crop in CROPS:
        ids = [k + 1 for k, c in enumerate(crops) if c == crop]
        v = o[np.isin(fid, ids)]
        print(f"| real {crop} | {100 * (v > 1).mean():.1f} % | {np.median(v):.2f} |")


if __name__ == "__main__":
    main()
