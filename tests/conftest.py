"""Shared fixtures: small simulated scenes, built once per test session."""

from __future__ import annotations

import pytest

from agrostress.simulate import SimulationConfig, simulate_scene


@pytest.fixture(scope="session")
def small_scene():
    """A 64×64 px benchmark scene with 6 fields (two of each class), at the calibration
    latitude (48 °N) so that the season's dates are those of the real wheat it was fitted to."""
    return simulate_scene(SimulationConfig(fields=6, size=64, seed=7, latitude=48.0))


@pytest.fixture(scope="session")
def easy_scene():
    """A 96×96 px easy scene with 9 fields at 48 °N, for class-ordering checks."""
    return simulate_scene(SimulationConfig(fields=9, size=96, seed=11, difficulty="easy", latitude=48.0))
