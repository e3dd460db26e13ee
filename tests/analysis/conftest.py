"""Fixtures for the analysis tests: small easy scenes and tiny checkpoints, built once.

One trained model serves every test: a small FFDNN on a spec that includes SWIR bands (so the
rust sanity test can compare red-edge/pigment features with SWIR), trained a few epochs on two
small easy scenes. The scene the tests analyse is a third, independent one.
"""

from __future__ import annotations

import pytest

from agrostress.simulate import SimulationConfig, simulate_scene
from tests.analysis.analysis_helpers import GRID, SPEC, TINY_FFDNN


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """One torch thread: on a shared 2-core machine OpenMP spin-waiting makes 2 threads
    many times slower than 1 for these tiny models."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _simulate(**kw):
    """simulate_scene at 48 °N (one domain: the tiny fixture model learns from two scenes),
    keeping torch at one thread (the simulator's numba/OpenMP kernels reset the process-wide
    OpenMP thread count)."""
    import torch

    out = simulate_scene(SimulationConfig(difficulty="easy", latitude=48.0, **kw))
    torch.set_num_threads(1)
    return out


@pytest.fixture(scope="session")
def train_scenes():
    """Two 48×48 px easy scenes with 9 fields each (training data of the fixture model)."""
    return [_simulate(fields=9, size=48, seed=s) for s in (601, 602)]


@pytest.fixture(scope="session")
def scene():
    """The analysed scene: 40×40 px, 6 fields (two per class), easy, independent seed."""
    return _simulate(fields=6, size=40, seed=7)


@pytest.fixture(scope="session")
def cube(scene):
    return scene[0]


@pytest.fixture(scope="session")
def fields_gdf(scene):
    return scene[1]


@pytest.fixture(scope="session")
def model_dir(train_scenes, tmp_path_factory):
    """A small FFDNN checkpoint (SWIR-including spec), trained on the two training scenes."""
    from agrostress.models import save
    from agrostress.training import TrainConfig, load_training_data, train_model

    data = load_training_data([s[0] for s in train_scenes], SPEC, GRID)
    model, _ = train_model(
        "ffdnn",
        data,
        TrainConfig(
            epochs=12, batch_size=256, lr=1e-2, patience=30, model_config=TINY_FFDNN, threads=1
        ),
    )
    return save(model.module, model.card, tmp_path_factory.mktemp("models") / "tiny_ffdnn")


@pytest.fixture(scope="session")
def model(model_dir):
    from agrostress.models import load

    return load(model_dir)


@pytest.fixture(scope="session")
def analysed(cube, model):
    """One explained analysis of the scene (IG), shared by read-only tests."""
    from agrostress.analysis import analyse
    from tests.analysis.analysis_helpers import CALL_ALL

    return analyse(cube, model, explain=True, explain_pixels=12, decision=CALL_ALL)


@pytest.fixture(scope="session")
def written(analysed, tmp_path_factory):
    """The files of :func:`analysed`."""
    from agrostress.analysis import write_outputs

    out = tmp_path_factory.mktemp("outputs") / "run"
    return out, write_outputs(analysed, out)


@pytest.fixture(scope="session")
def reference_model(train_scenes, tmp_path_factory):
    """A small FFDNN that judges pixels against the scene's wheat reference (with its
    calibration: temperature, OOD model), trained briefly on the two training scenes."""
    from agrostress.models import load, save
    from agrostress.training import TrainConfig, load_training_data, train_model
    from tests.analysis.analysis_helpers import REF_SPEC

    data = load_training_data([s[0] for s in train_scenes], REF_SPEC, GRID, reference_draws=2)
    model, _ = train_model(
        "ffdnn", data,
        TrainConfig(epochs=4, batch_size=256, lr=1e-2, patience=30, time_shift=2,
                    scene_jitter=0.2, model_config={**TINY_FFDNN, "reference": True}, threads=1),
    )
    return load(save(model.module, model.card, tmp_path_factory.mktemp("models") / "ref_ffdnn"))
