"""Fixtures for the preprocessing tests."""

from __future__ import annotations

import pytest

from tests.preprocess.pp_synth import make_cube


@pytest.fixture
def cube():
    """A 6×5 px cube with known piecewise-linear band series on irregular dates."""
    return make_cube()
