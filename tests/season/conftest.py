"""An in-season model (season cuts, masked steps, a reference), trained briefly on two small
simulated scenes written to disk (season cuts read the stress onsets of ``fields.geojson``),
and an independent scene to analyse."""

from __future__ import annotations

import pytest

from agrostress.simulate import SimulationConfig, simulate_scene, write_scene

SPEC = "LAI,LCC,NDREI,PSRI,REDSI,B04,B08,B11"
GRID = "60:200:5"
TINY = {"channels": 12, "depth": 1, "primary_types": 4, "primary_dim": 4, "class_dim": 6,
        "routing_iterations": 2, "reference": True, "absolute": False, "season_mask": True}


def _scene(path, seed, fields, size):
    import torch

    ds, gdf = simulate_scene(SimulationConfig(difficulty="easy", latitude=48.0, fields=fields,
                                              size=size, seed=seed))
    torch.set_num_threads(1)  # the simulator's numba kernels reset OpenMP's thread count
    return write_scene(ds, gdf, path)


@pytest.fixture(scope="session")
def season_scene(tmp_path_factory):
    """The analysed scene on disk: 40×40 px, 6 fields."""
    return _scene(tmp_path_factory.mktemp("season") / "scene.zarr", 11, 6, 40)


@pytest.fixture(scope="session")
def season_model_dir(tmp_path_factory):
    import torch

    from agrostress.models import save
    from agrostress.training import TrainConfig, load_training_data, train_model

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("season_train")
    scenes = [_scene(root / f"s{s}.zarr", s, 9, 48) for s in (611, 612)]
    data = load_training_data(scenes, SPEC, GRID, reference_draws=2, season_cuts=2)
    model, _ = train_model("ffdnn", data, TrainConfig(
        epochs=3, batch_size=256, lr=1e-2, patience=30, time_shift=2, model_config=TINY,
        threads=1))
    return save(model.module, model.card, root / "inseason")


@pytest.fixture(scope="session")
def season_model(season_model_dir):
    from agrostress.models import load

    return load(season_model_dir)
