"""As-of analyses: nothing after the date reaches a call; the time line; the CLI option."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from agrostress.analysis import analyse
from agrostress.cli import app
from agrostress.cube import open_cube
from agrostress.decision import DecisionPolicy

AS_OF = "2024-05-15"


def test_nothing_after_the_as_of_date_reaches_the_call(season_scene, season_model):
    """Rewriting every acquisition after the date (cloud-free, other reflectances) leaves the
    as-of call bit for bit as it was; the whole-season call does change."""
    cube = open_cube(season_scene).load()
    later = cube["time"].values > np.datetime64("2024-05-16")
    assert later.any() and (~later).any()
    other = cube.copy(deep=True)
    refl = other["reflectance"].values
    refl[later] = np.clip(refl[later] * 1.7 + 0.02, 0, 1)
    other["scl"].values[later] = 4
    a = analyse(cube, season_model, as_of=AS_OF)
    b = analyse(other, season_model, as_of=AS_OF)
    np.testing.assert_array_equal(a.classes.values, b.classes.values)
    np.testing.assert_array_equal(a.probabilities.values, b.probabilities.values)
    assert [r.call for r in a.fields] == [r.call for r in b.fields]
    assert a.meta["season"]["partial"] and a.meta["season"]["masked"]
    assert a.meta["season"]["last_acquisition"] <= AS_OF
    full_a, full_b = analyse(cube, season_model), analyse(other, season_model)
    assert not np.array_equal(full_a.probabilities.values, full_b.probabilities.values)


def test_time_line_ends_with_the_call_and_never_passes_the_date(season_scene, season_model):
    r = analyse(open_cube(season_scene), season_model, as_of=AS_OF,
                decision=DecisionPolicy(priors=None, min_confidence=0.0, max_ood=1e9))
    assert r.timelines is not None and len(r.timelines) == len(r.fields)
    for tl, row in zip(r.timelines, r.fields, strict=True):
        assert tl.dates[-1] == AS_OF and all(d <= AS_OF for d in tl.dates)
        assert tl.calls[-1] == row.call
        assert len(tl.dates) > 3 and tl.doys == sorted(tl.doys)
        assert all(abs(sum(tl.probabilities[n][k] for n in tl.probabilities) - 1) < 1e-4
                   for k in range(len(tl.dates)) if tl.calls[k] is not None)
        if tl.call_since is not None:
            k = tl.dates.index(tl.call_since)
            assert set(tl.calls[k:]) == {row.call}


def test_cli_predict_as_of(season_scene, season_model_dir, tmp_path):
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["predict", "--cube", str(season_scene), "--model",
                                   str(season_model_dir), "--out", str(out),
                                   "--as-of", AS_OF])
    assert res.exit_code == 0, res.output
    assert (out / "timeline.png").stat().st_size > 10_000
    summary = json.loads((out / "summary.json").read_text())
    assert summary["season"]["as_of"] == AS_OF and summary["season"]["partial"]
    assert summary["classes"]["4"] == "too_early"
    for f in summary["fields"]:
        assert f["timeline"]["dates"][-1] == AS_OF
        assert f["timeline"]["calls"][-1] == f["call"]
        assert "call_since" in f
    bad = CliRunner().invoke(app, ["predict", "--cube", str(season_scene), "--model",
                                   str(season_model_dir), "--out", str(tmp_path / "x"),
                                   "--as-of", "2023-01-01"])
    assert bad.exit_code == 2 and "nothing was acquired" in bad.output
