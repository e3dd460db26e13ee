"""Ablation: FFDNN with its neighbourhood statistics taken over stem embeddings.

    python bench/ffdnn_embedding_context.py [--train-scenes 120] [--max-pixels-per-cube 250]
                                            [--epochs 10] [--out bench/results/ffdnn_embedding_context.json]

The shipped FFDNN feeds its stem the centre, mean and standard deviation of the raw features
over the 5×5 patch. This variant runs the stem (1×1 conv, BN, GELU) on every pixel of the
patch first and takes centre, mean and standard deviation of the 24-channel embeddings, mixed
back to 24 channels by a 1×1 conv — a learned feature space for the patchiness statistics, as
the spatio-temporal model has, at about 3× FFDNN's training cost instead of 26×. Same data,
budget and test scenes as ``bench/models.py`` at the main budget; the image path here cuts
patches (slow, evaluation only). Not registered in the library: an experiment.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from agrostress.models.ffdnn import FFDNN
from agrostress.models.neighbourhood import std_from_moments
from agrostress.models.registry import register_model
from agrostress.training import TrainConfig, evaluate_model, load_training_data, train_model
from agrostress.training.data import patches
from pipelines.train_default import (
    FEATURES,
    FFDNN_CONFIG,
    GRID,
    TEST_SEEDS,
    TRAIN_SEEDS,
    scene_paths,
)


@register_model("ffdnn_embedding_context")
class EmbeddingContextFFDNN(FFDNN):
    """FFDNN whose patch statistics are computed on stem embeddings (see module docstring)."""

    def __init__(self, n_features: int, n_steps: int, channels: int = 32, context: int = 2,
                 **kw) -> None:
        super().__init__(n_features, n_steps, channels=channels, context=0, **kw)
        self.context = context
        self.mix = nn.Sequential(nn.Conv1d(3 * channels, channels, 1), nn.BatchNorm1d(channels),
                                 nn.GELU())

    def capsules(self, x: Tensor) -> tuple[Tensor, Tensor]:
        b, t, f, p, _ = x.shape
        e = self.stem(x.permute(0, 3, 4, 2, 1).reshape(b * p * p, f, t)).view(b, p * p, -1, t)
        mean = e.mean(1)
        h = self.mix(torch.cat([e[:, (p * p) // 2], mean, std_from_moments(mean, e.pow(2).mean(1))], 1))
        return self._encode(h)

    def forward(self, x: Tensor) -> Tensor:
        return self._logits(self.capsules(x)[0])

    def forward_image(self, x: Tensor, pixel_batch: int = 4096) -> Tensor:
        _, _, _, h, w = x.shape
        img = x[0].numpy()
        rows, cols = (a.ravel() for a in np.meshgrid(np.arange(h), np.arange(w), indexing="ij"))
        out = [self.forward(torch.from_numpy(patches(img, rows[i : i + pixel_batch],
                                                     cols[i : i + pixel_batch], self.context)))
               for i in range(0, rows.size, pixel_batch)]
        return torch.cat(out).T.reshape(1, -1, h, w)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path, default=Path("agrostress-data/sim"))
    ap.add_argument("--train-scenes", type=int, default=120)
    ap.add_argument("--max-pixels-per-cube", type=int, default=250)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--out", type=Path,
                    default=Path(__file__).parent / "results" / "ffdnn_embedding_context.json")
    args = ap.parse_args()
    train = scene_paths("train", TRAIN_SEEDS[: args.train_scenes], args.data_dir, 128, 12)
    test = scene_paths("test", TEST_SEEDS, args.data_dir, 128, 12)
    data = load_training_data(train, FEATURES, GRID, context=FFDNN_CONFIG["context"],
                              max_pixels_per_cube=args.max_pixels_per_cube)
    t0 = time.perf_counter()
    model, hist = train_model("ffdnn_embedding_context", data,
                              TrainConfig(epochs=args.epochs, model_config=dict(FFDNN_CONFIG),
                                          threads=1))
    train_s = time.perf_counter() - t0
    rep = evaluate_model(model, test)
    res = {"pixel_oa": rep["pixel"]["overall_accuracy"],
           "field_oa": rep["field"]["overall_accuracy"],
           "params": sum(p.numel() for p in model.module.parameters()), "train_s": train_s,
           "best_epoch": hist["best"]["epoch"], "epochs": args.epochs,
           "train_scenes": args.train_scenes, "max_pixels_per_cube": args.max_pixels_per_cube}
    print(json.dumps(res, indent=1))
    args.out.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
