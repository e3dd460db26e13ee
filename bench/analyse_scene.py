"""Seconds per scene on the core path, split by stage, for one or more checkpoints in the same
run (best of ``--repeats``, after one warm-up call).

    python bench/analyse_scene.py --model models/ffdnn --model agrostress-data/models/previous \\
        [--cube agrostress-data/sim/test_2000.zarr] [--repeats 3]

The default cube is a simulated 128×128 px test scene of ``pipelines.train_default``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agrostress.analysis import analyse  # noqa: E402
from agrostress.cube import open_cube  # noqa: E402
from agrostress.models import load  # noqa: E402

STAGES = ("read", "preprocess", "reference", "model", "total")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--cube", type=Path,
                    default=ROOT / "agrostress-data" / "sim" / "test_2000.zarr")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    cube = open_cube(args.cube).load()
    print(f"| model | {' | '.join(f'{s} s' for s in STAGES)} |\n|---|" + "---|" * len(STAGES))
    for path in args.model:
        model = load(path)
        analyse(cube, model, trajectory_features=None)  # warm-up (numba, caches)
        runs = [analyse(cube, model, trajectory_features=None).timings
                for _ in range(args.repeats)]
        best = min(runs, key=lambda t: t["total"])
        print(f"| {path} | " + " | ".join(f"{best.get(s, 0.0):.3f}" for s in STAGES) + " |")


if __name__ == "__main__":
    main()
