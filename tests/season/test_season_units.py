"""Season cuts, visible labels and the in-season decision rule."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from agrostress.analysis.timeline import call_since
from agrostress.cube import TOO_EARLY_CODE, UNCERTAIN_CODE
from agrostress.decision import DecisionPolicy, abstentions
from agrostress.preprocess.grid import TemporalGrid
from agrostress.preprocess.season import cut_season, parse_as_of
from agrostress.training.season import HEALTHY, NITROGEN, RUST, visible_labels

GRID = TemporalGrid(60, 200, 5)


def _cube(dates: list[str]) -> xr.Dataset:
    t = pd.to_datetime(dates)
    return xr.Dataset({"v": ("time", np.arange(len(t), dtype=float))}, coords={"time": t})


def test_cut_drops_later_acquisitions_and_keeps_the_season_year():
    cube = _cube(["2023-11-20", "2024-03-01", "2024-04-10", "2024-05-02", "2024-06-30"])
    cut_cube, cut = cut_season(cube, GRID, "2024-05-01")
    assert list(cut_cube["v"].values) == [0, 1, 2]
    assert cut.last_acquisition == dt.date(2024, 4, 10)
    assert cut.as_of == dt.date(2024, 5, 1) and cut.year == 2024
    assert cut.horizon_doy == 101 and cut.observed_steps == 9  # DOY 60, 65, …, 100
    assert cut.partial
    whole, full = cut_season(cube, GRID)
    assert whole.sizes["time"] == 5 and full.as_of == dt.date(2024, 6, 30)
    assert full.observed_steps == 25  # DOY 182: the steps of DOY 60 … 180


def test_cut_before_any_acquisition_is_a_clear_error():
    with pytest.raises(ValueError, match="nothing was acquired"):
        cut_season(_cube(["2024-03-01"]), GRID, "2024-02-01")
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_as_of("May 1st")


def test_labels_are_what_could_be_seen_by_the_cut():
    label = np.array([[HEALTHY, NITROGEN, RUST]])
    fid = np.array([[1, 2, 3]])
    onsets = {2: 120.0, 3: 140.0}
    assert visible_labels(label, fid, onsets, 110).tolist() == [[0, 0, 0]]  # before onsets
    assert visible_labels(label, fid, onsets, 125).tolist() == [[0, -1, 0]]  # N showing
    assert visible_labels(label, fid, onsets, 130).tolist() == [[0, 1, 0]]  # N ≥ 10 days
    assert visible_labels(label, fid, onsets, 146).tolist() == [[0, 1, -1]]
    assert visible_labels(label, fid, onsets, 147).tolist() == [[0, 1, 2]]  # rust ≥ 7 days


def test_abstentions_in_season_are_too_early_and_ood_stays_uncertain():
    p = np.array([[0.5, 0.9, 0.5], [0.3, 0.05, 0.3], [0.2, 0.05, 0.2]])[:, None, :]  # (C,1,3)
    ood = np.array([[0.1, 0.1, 5.0]])
    policy = DecisionPolicy(priors=None, min_confidence=0.6, season_complete_doy=170)
    assert abstentions(p, ood, policy, 140).tolist() == [[TOO_EARLY_CODE, 0, UNCERTAIN_CODE]]
    assert abstentions(p, ood, policy, 180).tolist() == [[UNCERTAIN_CODE, 0, UNCERTAIN_CODE]]
    assert abstentions(p, ood, policy).tolist() == [[UNCERTAIN_CODE, 0, UNCERTAIN_CODE]]
    assert abstentions(p, ood, policy, 80).tolist() == [[TOO_EARLY_CODE] * 3]  # before April


def test_call_since_is_the_start_of_the_last_unbroken_run():
    dates = ["a", "b", "c", "d", "e"]
    names = ["healthy", "nitrogen_deficiency", "yellow_rust"]
    calls = ["healthy", "yellow_rust", "healthy", "yellow_rust", "yellow_rust"]
    assert call_since(calls, dates, names) == "d"
    assert call_since(["too_early", "healthy"], ["a", "b"], names) == "b"
    assert call_since(["healthy", "too_early"], ["a", "b"], names) is None
