"""Plain helpers of the analysis tests (a uniquely named module: test folders each have a
conftest.py, so importing ``conftest`` from a test would pick whichever loaded first)."""

from __future__ import annotations

import numpy as np

from agrostress.decision import DecisionPolicy

SPEC = "LAI,LCC,NDREI,PSRI,REDSI,B11,B12"
GRID = "60:200:5"
#: no abstention, the training prior: every valid pixel and field gets a stress class (the
#: tiny fixture models know too little for the product's abstention rule)
CALL_ALL = DecisionPolicy(priors=None, min_confidence=0.0, max_ood=1e9)
REF_SPEC = SPEC + ",B04,B08"  # the reference gate reads NDVI
TINY_FFDNN = {
    "channels": 16,
    "depth": 1,
    "primary_types": 4,
    "primary_dim": 4,
    "class_dim": 8,
    "routing_iterations": 2,
}


def untrained_model(cube, arch: str = "ffdnn", spec: str = SPEC, **config):
    """A LoadedModel with random weights and the cube's own normalisation (no training)."""
    import torch

    from agrostress.models import LoadedModel, ModelCard, create_model
    from agrostress.preprocess import FeatureSpec, NormStats, TemporalGrid, feature_stack

    torch.manual_seed(0)
    fspec, grid = FeatureSpec.parse(spec), TemporalGrid.parse(GRID)
    fs = feature_stack(cube, fspec, grid)
    norm = NormStats.fit(fs)
    module = create_model(arch, n_features=len(fspec), n_steps=len(grid), n_classes=3, **config)
    module.eval()
    card = ModelCard(
        name=f"untrained-{arch}",
        architecture=arch,
        config=dict(config),
        n_features=len(fspec),
        n_steps=len(grid),
        feature_spec=list(fspec.names),
        grid=str(grid),
        normalisation=norm.to_dict(),
    )
    return LoadedModel(card=card, module=module, norm=norm)


def cloudy_cube(cube, rows: slice, cols: slice):
    """``cube`` with every observation of a block marked cloudy (SCL 9) → insufficient data."""
    out = cube.copy(deep=True)
    scl = out["scl"].values.copy()
    scl[:, rows, cols] = 9
    out["scl"] = (out["scl"].dims, scl)
    return out


def png_is_nontrivial(path) -> bool:
    """A decodable PNG of reasonable size with real content (many distinct colours)."""
    import matplotlib.image as mpimg

    img = mpimg.imread(path)
    if img.ndim != 3 or min(img.shape[:2]) < 200:
        return False
    rgb = (img[::2, ::2, :3] * 255).astype(np.uint32)
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    return len(np.unique(packed)) > 20 and float(img[..., :3].std()) > 0.05
