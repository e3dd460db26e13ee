"""Model zoo benchmark: same training scenes, same budget, same independent test scenes.

    python bench/models.py [--models ffdnn,tempcnn,...] [--epochs 15] [--max-pixels-per-cube 2500]
                           [--train-scenes N] [--test-scenes N] [--threads 2]
                           [--ffdnn-config '{"context": 3}']   # FFDNN variants (merged)

Scenes come from the shipped model's recipe (``pipelines/train_default.py``: the first N
training seeds from 1000, the first N test seeds from 2000, benchmark difficulty; simulated
once into agrostress-data/sim). Prints a table and writes bench/results/models.json (--out).
Throughput is CPU inference on pre-computed features (pixel-series/s at batch 8192, torch
threads = 2).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from agrostress.models import list_models
from agrostress.training import TrainConfig, evaluate_model, load_training_data, train_model
from pipelines.train_default import (
    FEATURES,
    FFDNN_CONFIG,
    GRID,
    TEST_SEEDS,
    TRAIN_SCENES,
    TRAIN_SEEDS,
    scene_paths,
)

DEFAULT = ["ffdnn", "tempcnn", "transformer", "inceptiontime", "random_forest",
           "spatiotemporal", *[m for m in list_models() if m.startswith("mixer_")]]


def throughput(model, n_steps: int, n_features: int, batch: int = 8192, repeats: int = 3) -> float:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, n_steps, n_features)).astype(np.float32)
    if model.context:
        img = np.moveaxis(x.reshape(64, 128, n_steps, n_features), (2, 3), (0, 1))
        model.predict_proba_image(img)
        t0 = time.perf_counter()
        for _ in range(repeats):
            model.predict_proba_image(img)
    else:
        model.predict_proba(x[:512], normalised=True)
        t0 = time.perf_counter()
        for _ in range(repeats):
            model.predict_proba(x, batch=batch, normalised=True)
    return batch * repeats / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=",".join(DEFAULT))
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--max-pixels-per-cube", type=int, default=2500)
    ap.add_argument("--data-dir", type=Path, default=Path("agrostress-data/sim"))
    ap.add_argument("--features", default=FEATURES)
    ap.add_argument("--train-scenes", type=int, default=TRAIN_SCENES)
    ap.add_argument("--test-scenes", type=int, default=len(TEST_SEEDS))
    ap.add_argument("--threads", type=int, default=2, help="torch threads for training")
    ap.add_argument("--ffdnn-config", default="{}",
                    help="JSON merged into the recipe's FFDNN config (ablations)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "models.json")
    args = ap.parse_args()
    train = scene_paths("train", TRAIN_SEEDS[: args.train_scenes], args.data_dir, 128, 12)
    test = scene_paths("test", TEST_SEEDS[: args.test_scenes], args.data_dir, 128, 12)
    data: dict = {}  # training data per context radius, loaded when first needed
    rows = []
    out = args.out
    for name in args.models.split(","):
        ffdnn = {**FFDNN_CONFIG, **json.loads(args.ffdnn_config)}
        config = {"ffdnn": ffdnn, "random_forest": {"n_estimators": 200}}.get(name, {})
        ctx = int(config.get("context", 2 if name == "spatiotemporal" else 0))
        if ctx not in data:
            data[ctx] = load_training_data(train, args.features, GRID, context=ctx,
                                           max_pixels_per_cube=args.max_pixels_per_cube)
        d = data[ctx]
        t0 = time.perf_counter()
        model, hist = train_model(name, d, TrainConfig(epochs=args.epochs, model_config=config,
                                                             threads=args.threads))
        train_s = time.perf_counter() - t0
        rep = evaluate_model(model, test)
        params = (sum(p.numel() for p in model.module.parameters()) if model.is_torch
                  else int(model.module.arrays["left"].size))
        torch.set_num_threads(2)
        rows.append({
            "model": name, "config": config, "params": params,
            "pixel_oa": rep["pixel"]["overall_accuracy"], "field_oa": rep["field"]["overall_accuracy"],
            "pixel_macro_f1": rep["pixel"]["macro_f1"], "field_macro_f1": rep["field"]["macro_f1"],
            "series_per_s": throughput(model, d.x.shape[1], d.x.shape[2]),
            "train_s": train_s, "best_epoch": hist["best"]["epoch"],
        })
        Console().print(rows[-1])
        out.write_text(json.dumps({"epochs": args.epochs, "train_scenes": len(train),
                                   "test_scenes": len(test),
                                   "max_pixels_per_cube": args.max_pixels_per_cube,
                                   "rows": rows}, indent=2))
    table = Table(title=f"model zoo on independent test scenes (benchmark), {args.epochs} epochs")
    for col in ("model", "params", "pixel OA", "field OA", "pixel F1", "field F1",
                "series/s", "train s"):
        table.add_column(col, justify="right")
    for r in sorted(rows, key=lambda r: -r["field_oa"]):
        table.add_row(r["model"], f"{r['params']:,}", f"{r['pixel_oa']:.3f}", f"{r['field_oa']:.3f}",
                      f"{r['pixel_macro_f1']:.3f}", f"{r['field_macro_f1']:.3f}",
                      f"{r['series_per_s']:,.0f}", f"{r['train_s']:.0f}")
    Console().print(table)


if __name__ == "__main__":
    main()
