"""The rust epidemic: the compiled lesion-stage pass equals its definition."""

from __future__ import annotations

import numpy as np

from agrostress.simulate.rust import (
    NECROSIS_LAG,
    SPORULATION_LAG,
    SUBCELLS,
    SYMPTOM_LAG,
    RustField,
    RustMap,
)


def test_lesion_fractions_equal_differenced_infection_curves():
    rng = np.random.default_rng(0)
    mask = np.zeros((30, 40), dtype=bool)
    mask[5:25, 3:30] = True
    rust = RustMap.empty(mask.size)
    rust.add_field(rng, mask, RustField(onset=130, rate=0.15, max_fraction=0.6, focus_share=0.1,
                                        spread_px_per_day=0.2))
    for day in (100.0, 140.0, 165.0, 200.0):
        visible, spor, necr = (rust.infected(day - lag) for lag in (SYMPTOM_LAG, SPORULATION_LAG, NECROSIS_LAG))
        expected = [
            np.bincount(rust.pixel, weights=np.maximum(stage, 0), minlength=mask.size) / SUBCELLS**2
            for stage in (visible - spor, spor - necr, necr)
        ]
        got = rust.lesion_fractions(day)
        for e, g in zip(expected, got, strict=True):
            np.testing.assert_allclose(g, e, atol=1e-12)
    assert got[2][mask.ravel()].mean() > 0.05  # late in the season lesions are necrotic
    assert np.all(got[0][~mask.ravel()] == 0)
