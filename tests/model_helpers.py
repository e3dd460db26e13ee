"""Tiny untrained checkpoints (random weights, seed 0): fast to make, they load for real.

:func:`build_model` is the suite's shared tiny model (the ``tiny_model_dir`` fixture of
``tests/conftest.py``); :func:`build_reference_model` is its reference-gated variant.
"""

from __future__ import annotations

from pathlib import Path

FEATURES = ["LAI", "LCC", "NDREI", "MTCI", "S2REP", "REDSI", "PSRI"]
GRID = "60:200:5"
N_STEPS = 29  # dates of GRID
NORM = {
    "features": FEATURES,
    "mean": [2.33, 35.4, 0.57, 2.95, 722.8, 152.1, 0.018],
    "std": [1.11, 9.87, 0.134, 1.29, 4.94, 184.1, 0.041],
    "lo": [0.62, 7.27, 0.21, 0.41, 696.7, -72.4, -0.046],
    "hi": [5.6, 52.1, 0.81, 6.79, 732.3, 1039.2, 0.166],
}


def build_model(out: Path, name: str = "ffdnn-test", version: str = "0.0.1") -> Path:
    """An untrained FFDNN checkpoint on the seven default features and :data:`GRID`."""
    import torch

    from agrostress.models import ModelCard, create_model, save

    torch.manual_seed(0)
    module = create_model("ffdnn", n_features=len(FEATURES), n_steps=N_STEPS, n_classes=3)
    card = ModelCard(
        name=name, architecture="ffdnn", config={}, n_features=len(FEATURES), n_steps=N_STEPS,
        feature_spec=list(FEATURES), grid=GRID, normalisation=dict(NORM),
        version=version, metrics={"field": {"overall_accuracy": 0.5}},
    )
    return save(module, card, out)


def build_reference_model(out: Path) -> Path:
    """An untrained FFDNN that judges fields against a wheat reference (its spec carries
    B04/B08 for the reference gate, and a flat built-in reference)."""
    import torch

    from agrostress.models import ModelCard, create_model, save

    feats = [*FEATURES, "B04", "B08"]
    norm = {k: (feats if k == "features" else [*NORM[k], *extra])
            for k, extra in (("features", None), ("mean", [0.05, 0.33]), ("std", [0.03, 0.09]),
                             ("lo", [0.0, 0.1]), ("hi", [0.3, 0.6]))}
    torch.manual_seed(0)
    module = create_model("ffdnn", n_features=len(feats), n_steps=N_STEPS, n_classes=3,
                          reference=True)
    card = ModelCard(
        name="ffdnn-reference-test", architecture="ffdnn", config={"reference": True},
        n_features=len(feats), n_steps=N_STEPS, feature_spec=feats, grid=GRID,
        normalisation=norm, builtin_reference=[norm["mean"]] * N_STEPS,
    )
    return save(module, card, out)
