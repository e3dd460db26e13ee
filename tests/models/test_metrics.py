"""Metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from agrostress.training.metrics import (
    classification_report,
    expected_calibration_error,
    field_aggregate,
)

NAMES = ["healthy", "nitrogen_deficiency", "yellow_rust"]


def test_report_values():
    y = np.array([0, 0, 1, 1, 2, 2])
    p = np.array([0, 1, 1, 1, 2, 0])
    r = classification_report(y, p, None, NAMES)
    assert r["overall_accuracy"] == pytest.approx(4 / 6)
    assert r["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert r["per_class"]["nitrogen_deficiency"]["precision"] == pytest.approx(2 / 3)
    assert r["per_class"]["yellow_rust"]["recall"] == pytest.approx(0.5)
    # kappa: po = 4/6, pe = (2*2 + 2*3 + 2*1)/36 = 12/36
    assert r["kappa"] == pytest.approx((4 / 6 - 1 / 3) / (1 - 1 / 3))


def test_ece_zero_when_calibrated_and_positive_when_not():
    proba = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    assert expected_calibration_error(proba, np.array([0, 1])) == 0.0
    over = np.array([[0.9, 0.05, 0.05]] * 10)
    y = np.array([0] * 5 + [1] * 5)
    assert expected_calibration_error(over, y) == pytest.approx(0.4)


def test_field_aggregation_rules():
    keys = np.array([1, 1, 1, 2, 2])
    y = np.array([2, 2, 2, 0, 0])
    proba = np.array([[0.4, 0.0, 0.6], [0.4, 0.0, 0.6], [0.9, 0.1, 0.0],
                      [0.8, 0.1, 0.1], [0.6, 0.3, 0.1]])
    k, truth, call, mean_p = field_aggregate(keys, y, proba, "majority")
    assert k.tolist() == [1, 2] and truth.tolist() == [2, 0] and call.tolist() == [2, 0]
    _, _, call_mean, _ = field_aggregate(keys, y, proba, "mean_probability")
    assert call_mean.tolist() == [0, 0]  # mean 0.567 healthy vs 0.4 rust
    with pytest.raises(ValueError):
        field_aggregate(keys, y, proba, "vote")
