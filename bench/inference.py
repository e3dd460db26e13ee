"""CPU inference throughput of the shipped model against TempCNN, in the same run.

    python bench/inference.py [--model models/ffdnn] [--batch 8192] [--repeats 5] [--threads 2]
    python bench/inference.py --device cuda --batch 262144     # on a GPU
    python bench/inference.py --also spatiotemporal            # more zoo models, same run

Pixel-series per second on normalised inputs (the model call only, no preprocessing). A model
with spatial context (``context > 0``) is timed on its image path, ``forward_image`` on a
64 × (batch / 64) px feature image: that is how maps are computed, and each pixel's series is
read once. TempCNN has the zoo's default configuration for the same input shape (untrained weights: the cost of a
forward pass does not depend on them).
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

from agrostress.models import create_model


def shipped_model(path: str) -> tuple[str, torch.nn.Module, int, int]:
    """(name, module, n_steps, n_features) of a checkpoint: through ``load`` (verified), or,
    where the geospatial stack it needs is not installed (a bare GPU machine), the card's
    architecture with the stored weights read by safetensors (never a pickle)."""
    try:
        from agrostress.models import load
    except ImportError:
        from safetensors.torch import load_file

        card = json.loads((Path(path) / "card.json").read_text())
        module = create_model(card["architecture"], n_features=card["n_features"],
                              n_steps=card["n_steps"], n_classes=len(card["class_names"]),
                              **card["config"])
        module.load_state_dict(load_file(Path(path) / "model.safetensors"), strict=True)
        return card["name"], module, card["n_steps"], card["n_features"]
    loaded = load(path)
    return loaded.card.name, loaded.module, loaded.card.n_steps, loaded.card.n_features


def series_per_s(module: torch.nn.Module, x: torch.Tensor, repeats: int) -> float:
    module.eval().to(x.device)
    sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)
    if getattr(module, "context", 0):  # (N, T, F) -> one (1, T, F, 64, N / 64) image
        img = x.reshape(64, -1, *x.shape[1:]).permute(2, 3, 0, 1)[None].contiguous()
        call = lambda: module.forward_image(img)  # noqa: E731
    else:
        call = lambda: module(x)  # noqa: E731
    with torch.inference_mode():
        call()
        best = float("inf")
        for _ in range(repeats):
            sync()
            t0 = time.perf_counter()
            call()
            sync()
            best = min(best, time.perf_counter() - t0)
    return len(x) / best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/ffdnn")
    ap.add_argument("--batch", type=int, default=8192)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--also", default="",
                    help="more zoo models at their defaults, comma-separated (e.g. "
                         "spatiotemporal: 5×5 context, image path)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    name, module, t, f = shipped_model(args.model)
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((args.batch, t, f),
                                                                  dtype=np.float32))
    x = x.to(args.device)
    rows = [(f"{name} (shipped)", module),
            ("tempcnn (zoo default)", create_model("tempcnn", n_features=f, n_steps=t))]
    rows += [(f"{m} (zoo default)", create_model(m, n_features=f, n_steps=t))
             for m in filter(None, args.also.split(","))]
    table = Table(title=f"inference, batch {args.batch}, {t} steps × {f} features, "
                        f"{args.device if args.device != 'cpu' else f'{args.threads} CPU threads'} "
                        f"(best of {args.repeats})")
    for col in ("model", "params", "series/s"):
        table.add_column(col, justify="right")
    rates = []
    for name, module in rows:
        rate = series_per_s(module, x, args.repeats)
        rates.append(rate)
        table.add_row(name, f"{sum(p.numel() for p in module.parameters()):,}", f"{rate:,.0f}")
    Console().print(table)
    Console().print(f"speed-up over TempCNN: {rates[0] / rates[1]:.1f}×")
    for (other, _), rate in zip(rows[2:], rates[2:], strict=True):
        Console().print(f"speed-up over {other}: {rates[0] / rate:.1f}×")


if __name__ == "__main__":
    main()
