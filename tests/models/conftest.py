"""Small training data shared by the model tests (built once per session)."""

from __future__ import annotations

import pytest

from agrostress.simulate import SimulationConfig, simulate_scene
from agrostress.training import load_training_data


@pytest.fixture(scope="session")
def tiny_cubes():
    return [simulate_scene(SimulationConfig(fields=6, size=40, seed=s, difficulty="easy",
                                            latitude=48.0))[0]
            for s in (21, 22)]


@pytest.fixture(scope="session")
def tiny_data(tiny_cubes):
    return load_training_data(tiny_cubes, "ffdnn", "60:200:5")
