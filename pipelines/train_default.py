"""Recipe of the shipped default model (``models/ffdnn``): simulate, train, evaluate, save.

    python -m pipelines.train_default [--out models/ffdnn] [--data-dir agrostress-data/sim]

Training scenes: seeds 1000–1159 (160 scenes, 1,920 fields, 500 px sampled from each), test
scenes (independent): seeds 2000–2035 (432 fields), all 128×128 px with 12 fields at
``benchmark`` difficulty, each in its own randomised domain (simulated once and cached under
--data-dir, about 4–8 s per scene, not in git). The model judges each pixel by its deviation
from the scene's wheat reference (``reference``, no ``absolute`` input; four reference draws
per scene) and, seasons being cut at four random dates per scene as well (labels: what was
visible by each cut), masks the steps after each cut, so one model answers on every date. 25 epochs on one thread take about 10–15 minutes and under 12 GB of memory.
Temperature and OOD model are fitted on the validation fields; the test metrics are written
into the model card. ``--domains in`` trains the held-out protocol's model
(``bench/generalisation.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rich.console import Console

from agrostress.models import save
from agrostress.simulate import SimulationConfig, simulate_scene, write_scene
from agrostress.training import TrainConfig, evaluate_model, load_training_data, train_model

TRAIN_SEEDS = tuple(range(1000, 1160))
TEST_SEEDS = tuple(range(2000, 2036))
TRAIN_SCENES = 160  # the recipe uses the first TRAIN_SCENES training seeds
FFDNN_CONFIG = {"channels": 24, "depth": 2, "primary_types": 6, "primary_dim": 8, "class_dim": 8,
                "dropout": 0.2, "context": 2, "reference": True, "absolute": False,
                "season_mask": True}
REFERENCE_DRAWS = 4  # reference draws per training scene (see agrostress.training.references)
SEASON_CUTS = 4  # random season cuts per training scene (see agrostress.training.season)
TIME_SHIFT = 4  # ± grid steps (20 days) of joint pixel + reference shift
SCENE_JITTER = 0.3  # per-date offsets shared by pixel and reference (normalised units)
GRID = "60:200:5"  # temporal grid, DOY first:last:step
FEATURES = "ffdnn,bands"  # photochemical series + red-edge/rust indices + the 10 bands
console = Console()

#: the held-out-domain protocol (``bench/generalisation.py``): scenes of later phenology (north of
#: 52 °N), early ripening (drought years) or a sparse calendar (one relative orbit) are held out
HELD_OUT_LATITUDE = 52.0


def held_out(domain: dict) -> bool:
    """Whether a scene's recorded domain (cube attribute ``domain``) is a held-out one."""
    return (float(domain["latitude"]) >= HELD_OUT_LATITUDE or domain["weather"] == "drought"
            or int(domain["orbits"]) == 1)


def scene_domain(path: Path) -> dict:
    """The recorded simulation domain of a scene on disk."""
    import xarray as xr

    with xr.open_zarr(path) as ds:
        return json.loads(ds.attrs["domain"])


def scene_paths(kind: str, seeds: tuple[int, ...], data_dir: Path, size: int, fields: int,
                difficulty: str = "benchmark") -> list[Path]:
    """Simulated scenes on disk (created when missing)."""
    out = []
    for s in seeds:
        path = data_dir / f"{kind}_{s}.zarr"
        if not path.exists():
            console.print(f"simulating {path} …")
            ds, gdf = simulate_scene(SimulationConfig(fields=fields, size=size, seed=s,
                                                      difficulty=difficulty))
            write_scene(ds, gdf, path)
        out.append(path)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("models/ffdnn"))
    ap.add_argument("--data-dir", type=Path, default=Path("agrostress-data/sim"))
    ap.add_argument("--model", default="ffdnn")
    ap.add_argument("--features", default=FEATURES)
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--max-pixels-per-cube", type=int, default=500)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--fields", type=int, default=12)
    ap.add_argument("--config", default=json.dumps(FFDNN_CONFIG))
    ap.add_argument("--train-scenes", type=int, default=TRAIN_SCENES, help="use the first N training seeds")
    ap.add_argument("--test-scenes", type=int, default=len(TEST_SEEDS), help="use the first N test seeds")
    ap.add_argument("--grid", default=GRID, help="temporal grid first:last:step (DOY)")
    ap.add_argument("--patience", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0, help="pixel sampling, split and init seed")
    ap.add_argument("--reference-draws", type=int, default=REFERENCE_DRAWS)
    ap.add_argument("--season-cuts", type=int, default=SEASON_CUTS,
                    help="random in-season cuts per scene (needs season_mask in --config)")
    ap.add_argument("--time-shift", type=int, default=TIME_SHIFT)
    ap.add_argument("--scene-jitter", type=float, default=SCENE_JITTER)
    ap.add_argument("--domains", choices=("all", "in"), default="all",
                    help="training scenes: all domains, or only those the held-out protocol keeps "
                    "for training (see held_out)")
    ap.add_argument("--init", type=Path, default=None,
                    help="warm start from this checkpoint (same architecture, features and grid; "
                    "its normalisation is kept)")
    ap.add_argument("--lr", type=float, default=TrainConfig.lr, help="peak learning rate")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: fastest for this small model, and reproducible)")
    args = ap.parse_args(argv)
    train = scene_paths("train", TRAIN_SEEDS[: args.train_scenes], args.data_dir, args.size, args.fields)
    test = scene_paths("test", TEST_SEEDS[: args.test_scenes], args.data_dir, args.size, args.fields)
    if args.domains == "in":
        train = [p for p in train if not held_out(scene_domain(p))]
        test = [p for p in test if not held_out(scene_domain(p))]
    t0 = time.perf_counter()
    data = load_training_data(train, args.features, args.grid,
                              context=int(json.loads(args.config).get("context", 0)),
                              max_pixels_per_cube=args.max_pixels_per_cube, seed=args.seed,
                              reference_draws=args.reference_draws
                              if json.loads(args.config).get("reference") else 0,
                              season_cuts=args.season_cuts
                              if json.loads(args.config).get("season_mask") else 0)
    console.print(f"{len(data.y):,} training pixels ({time.perf_counter() - t0:.0f} s features)")
    model_config = json.loads(args.config)
    cfg = TrainConfig(epochs=args.epochs, model_config=model_config, seed=args.seed,
                      patience=args.patience, threads=args.threads, time_shift=args.time_shift,
                      scene_jitter=args.scene_jitter, lr=args.lr,
                      init=str(args.init) if args.init else None)
    model, hist = train_model(
        args.model, data, cfg,
        on_epoch=lambda e, r: console.print(
            f"epoch {e:3d} loss {r['loss']:.4f} val acc {r['val_accuracy']:.3f} "
            f"F1 {r['val_macro_f1']:.3f}"),
    )
    report = evaluate_model(model, test)
    model.card.metrics = {
        "test_data": f"{len(test)} independent simulated scenes ({args.domains} domains), "
                     f"{[p.stem for p in test]}, "
                     f"{args.size}x{args.size} px, benchmark difficulty",
        "pixel": {k: report["pixel"][k] for k in ("overall_accuracy", "kappa", "macro_f1",
                                                  "ece", "per_class", "confusion", "n")},
        "field": {k: report["field"][k] for k in ("overall_accuracy", "kappa", "macro_f1",
                                                  "per_class", "confusion", "n")},
        "validation_macro_f1": hist["best"]["val_macro_f1"],
    }
    model.card.training["recipe"] = " ".join(
        ["python -m pipelines.train_default", *(sys.argv[1:] if argv is None else argv)])
    save(model.module, model.card, args.out)
    console.print(f"[green]✓[/] {args.out}: test pixel OA {report['pixel']['overall_accuracy']:.3f}"
                  f", field OA {report['field']['overall_accuracy']:.3f}")


if __name__ == "__main__":
    main()
