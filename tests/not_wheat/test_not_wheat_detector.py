"""The built-in not-wheat detector: trained on the simulator's land covers, it keeps wheat and
takes the other covers out of the stress map; it reads only the season so far."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from agrostress.analysis import analyse
from agrostress.analysis.not_wheat import MASKED, NotWheatDetector
from agrostress.commands import demo as demo_cmd
from agrostress.commands import predict as predict_cmd
from agrostress.cube import NOT_WHEAT, NOT_WHEAT_CODE, open_cube
from agrostress.models import load
from agrostress.settings import Settings, get_settings
from agrostress.simulate.landcover import WHEAT
from tests.model_helpers import build_model


@pytest.fixture(scope="module")
def detector(detector_dir):
    return NotWheatDetector.load(detector_dir)


def test_the_detector_reads_only_the_season_so_far(detector):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 29, len(detector.features))).astype(np.float32)
    later = x.copy()
    later[:, 12:] = rng.normal(size=later[:, 12:].shape) * 10
    np.testing.assert_array_equal(detector.probability(x, 12), detector.probability(later, 12))
    assert (detector.inputs(x, np.array([3, 29, 12, 12, 1]))[0, 3:] == MASKED).all()
    assert (detector.inputs(x, 29) != MASKED).all()


def test_the_card_says_what_it_is(detector_dir, detector, tiny_model_dir):
    card = json.loads((detector_dir / "card.json").read_text())
    v = card["metrics"]["validation"]["all"]
    assert card["class_names"] == ["wheat", "not_wheat"]
    assert 0.5 <= detector.threshold < 1
    assert v["wheat_kept"] > 0.8 and v["not_wheat_caught"] > 0.5, v
    with pytest.raises(ValueError, match="not a not-wheat detector"):
        NotWheatDetector.load(tiny_model_dir)
    with pytest.raises(FileNotFoundError, match="not-wheat detector"):
        NotWheatDetector.from_settings(Settings(_env_file=None, not_wheat_model_dir="/nope"))
    assert NotWheatDetector.from_settings(Settings(_env_file=None), enabled=False) is None


def test_a_region_map_keeps_wheat_and_masks_the_rest(region, detector, tmp_path):
    model = load(build_model(tmp_path / "m"))
    cube = open_cube(region).load()
    cover = np.asarray(cube["land_cover"].values)
    res = analyse(cube, model, not_wheat=detector, trajectory_features=None)
    cls = np.asarray(res.classes.values)
    valid = cls != 255
    wheat, other = valid & (cover == WHEAT), valid & (cover != WHEAT)
    kept_wheat = (cls[wheat] != NOT_WHEAT_CODE).mean()
    caught = (cls[other] == NOT_WHEAT_CODE).mean()
    # a detector from three small regions: far better than chance on both sides
    assert kept_wheat > 0.65 and caught > 0.6 and kept_wheat + caught > 1.4, (kept_wheat, caught)
    assert np.isnan(np.asarray(res.probabilities.values)[:, cls == NOT_WHEAT_CODE]).all()
    assert res.meta["wheat_mask"]["source"] == "detector"
    assert res.totals["pixels"][NOT_WHEAT] == int((cls == NOT_WHEAT_CODE).sum())
    plain = np.asarray(analyse(cube, model, trajectory_features=None).classes.values)
    kept = cls != NOT_WHEAT_CODE
    np.testing.assert_array_equal(cls[kept], plain[kept])  # the calls it keeps are unchanged
    # in season: the detector reads the same cut as the model (no error, a mask again)
    early = analyse(cube, model, not_wheat=detector, as_of="2024-05-20",
                    trajectory_features=None)
    assert (np.asarray(early.classes.values) == NOT_WHEAT_CODE).any()


def test_a_crop_attribute_wins_over_the_detector(region, detector, tmp_path):
    model = load(build_model(tmp_path / "m"))
    cube = open_cube(region).load()
    import geopandas as gpd

    fields = gpd.read_file(region / "fields.geojson")
    fields["crop"] = "BTH"
    from agrostress.analysis.crops import crop_selection

    res = analyse(cube, model, fields=fields, not_wheat=detector, trajectory_features=None,
                  crops=crop_selection(column="crop", values="bth"))
    assert res.meta["wheat_mask"]["source"] == "crop attribute"


def test_cli_predict_uses_the_settings_detector(region, detector_dir, tmp_path, monkeypatch):
    app = typer.Typer()
    predict_cmd.register(app)
    demo_cmd.register(app)
    model = build_model(tmp_path / "m")
    monkeypatch.setenv("AGROSTRESS_NOT_WHEAT_MODEL_DIR", str(detector_dir))
    get_settings.cache_clear()
    try:
        runs = {}
        for flag in ("--not-wheat", "--no-not-wheat"):
            out = tmp_path / flag
            res = CliRunner().invoke(app, ["predict", "--model", str(model), "--cube",
                                           str(region), "--out", str(out), "--no-plots", flag])
            assert res.exit_code == 0, res.output
            runs[flag] = json.loads((out / "summary.json").read_text())["scene"]
        assert runs["--not-wheat"]["wheat_mask"]["source"] == "detector"
        assert runs["--no-not-wheat"]["wheat_mask"] is None
        monkeypatch.setenv("AGROSTRESS_NOT_WHEAT_MODEL_DIR", str(tmp_path / "missing"))
        get_settings.cache_clear()
        res = CliRunner().invoke(app, ["predict", "--model", str(model), "--cube", str(region),
                                       "--out", str(tmp_path / "x"), "--no-plots"])
        assert res.exit_code == 2 and "not-wheat detector" in res.output
    finally:
        get_settings.cache_clear()
