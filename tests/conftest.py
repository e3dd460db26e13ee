"""Shared fixtures, built once per test session: small simulated scenes and the tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest

from agrostress.simulate import SimulationConfig, simulate_scene, write_scene
from tests.model_helpers import build_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The suite's tiny checkpoint: an untrained FFDNN (seed 0, seven default features,
    grid 60:200:5) named ``ffdnn-test`` 0.0.1. Enough for plumbing (API, batch); tests of
    what a model learned train their own (``tests/analysis``, ``tests/models``)."""
    return build_model(tmp_path_factory.mktemp("model") / "ffdnn-test")


@pytest.fixture(scope="session")
def small_scene():
    """A 64×64 px benchmark scene with 6 fields (two of each class), at the calibration
    latitude (48 °N) so that the season's dates are those of the real wheat it was fitted to."""
    return simulate_scene(SimulationConfig(fields=6, size=64, seed=7, latitude=48.0))


@pytest.fixture(scope="session")
def easy_scene():
    """A 96×96 px easy scene with 9 fields at 48 °N, for class-ordering checks."""
    return simulate_scene(SimulationConfig(fields=9, size=96, seed=11, difficulty="easy", latitude=48.0))


# --------------------------------------------------------------------------- not wheat

NOT_WHEAT_SPEC = "NDVI,B04,B08,B11,B12"


def _region(path: Path, seed: int) -> Path:
    ds, gdf = simulate_scene(SimulationConfig(fields=6, size=64, seed=seed, latitude=48.0))
    return write_scene(ds, gdf, path)


@pytest.fixture(scope="session")
def region(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The mapped region on disk: 64×64 px, 6 wheat fields and 3 parcels of other covers."""
    return _region(tmp_path_factory.mktemp("nw_region") / "region.zarr", 31)


@pytest.fixture(scope="session")
def detector_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pipelines.train_not_wheat import main

    root = tmp_path_factory.mktemp("nw_train")
    paths = [_region(root / f"r{s}.zarr", s) for s in (21, 22, 23)]
    out = root / "not_wheat"
    main(["--out", str(out), "--features", NOT_WHEAT_SPEC, "--grid", "60:200:5", "--trees", "20",
          "--depth", "10", "--pixels", "600", "--paths", *map(str, paths)])
    return out
