"""The scene reference and the "uncertain" outcome through the core path and its outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio

from agrostress.analysis import analyse, write_outputs
from agrostress.cube import NODATA, UNCERTAIN_CODE
from agrostress.decision import DecisionPolicy


def test_card_carries_reference_and_calibration(reference_model):
    card = reference_model.card
    assert reference_model.uses_reference
    assert np.asarray(card.builtin_reference).shape == (card.n_steps, card.n_features)
    cal = card.calibration
    assert cal["temperature"] > 0 and set(cal["training_prior"]) == set(card.class_names)
    assert cal["ood"]["mahalanobis_q"] > 0 and cal["ood"]["residual_q"] > 0


def test_scene_reference_from_the_fields(cube, reference_model):
    res = analyse(cube, reference_model, trajectory_features=None)
    ref = res.meta["reference"]
    assert ref["source"] == "scene" and ref["fields"] >= 3 and ref["pixels"] >= 100
    assert res.meta["decision"]["priors"]["healthy"] == pytest.approx(0.7)


def test_a_field_alone_uses_the_builtin_reference(cube, fields_gdf, reference_model):
    res = analyse(cube, reference_model, fields=fields_gdf.iloc[:1], trajectory_features=None)
    assert res.meta["reference"]["source"] == "built-in"
    assert len(res.fields) == 1 and res.fields[0].call is not None


def test_reference_does_not_depend_on_tiling(cube, reference_model):
    a = analyse(cube, reference_model, tile=16, trajectory_features=None)
    b = analyse(cube, reference_model, tile=64, trajectory_features=None)
    assert a.meta["reference"] == b.meta["reference"]
    np.testing.assert_allclose(a.probabilities.values, b.probabilities.values, atol=1e-5)


def test_the_reference_changes_the_answer(cube, reference_model):
    """The model reads the deviation from the reference: another reference, other odds."""
    from agrostress.preprocess import feature_stack

    fs = feature_stack(cube, reference_model.spec, reference_model.grid)
    f = np.asarray(fs["features"].transpose("doy", "feature", "y", "x").values)
    builtin = reference_model.builtin_reference
    reference_model.set_reference(builtin)
    p1 = reference_model.predict_proba_image(f)
    reference_model.set_reference(builtin * 0.8)
    p2 = reference_model.predict_proba_image(f)
    assert np.abs(p1 - p2).max() > 1e-3


def test_priors_move_calls_toward_the_likelier_class(cube, reference_model):
    flat = DecisionPolicy(priors=None, min_confidence=0.0)
    healthy = DecisionPolicy(priors={"healthy": 0.98, "nitrogen_deficiency": 0.01,
                                     "yellow_rust": 0.01}, min_confidence=0.0)
    a = analyse(cube, reference_model, decision=flat, trajectory_features=None)
    b = analyse(cube, reference_model, decision=healthy, trajectory_features=None)
    assert (b.classes.values == 0).sum() > (a.classes.values == 0).sum()
    assert b.meta["decision"]["priors"]["healthy"] == pytest.approx(0.98)


@pytest.fixture(scope="module")
def unsure(cube, reference_model):
    """Abstention forced by a confidence no pixel reaches."""
    return analyse(cube, reference_model, decision=DecisionPolicy(min_confidence=0.999),
                   trajectory_features=None)


def test_uncertain_pixels_and_fields(unsure):
    classes = unsure.classes.values
    valid = classes != NODATA
    assert (classes[valid] == UNCERTAIN_CODE).all() and valid.any()
    assert unsure.totals["pixels"]["uncertain"] == int(valid.sum())
    called = [f for f in unsure.fields if f.call is not None]
    assert called and all(f.call == "uncertain" for f in called)
    assert all(f.leading_class in unsure.class_names for f in called)
    assert all(f.class_fractions["uncertain"] == pytest.approx(1.0) for f in called)


def test_uncertain_in_every_output(unsure, tmp_path):
    paths = write_outputs(unsure, tmp_path / "run", plots=False)
    with rasterio.open(paths["stress_map"]) as src:
        assert src.tags()["CLASS_3"] == "uncertain"
        assert src.colormap(1)[UNCERTAIN_CODE][3] == 255  # opaque, its own colour
        assert src.colormap(1)[UNCERTAIN_CODE] != src.colormap(1)[0]
    summary = json.loads(paths["summary"].read_text())
    assert summary["classes"]["3"] == "uncertain" and summary["classes"]["255"] == "nodata"
    assert summary["decision"]["min_confidence"] == 0.999
    assert summary["reference"]["source"] == "scene"
    qml = paths["stress_map"].with_suffix(".qml").read_text()
    assert 'label="uncertain"' in qml


def test_batch_counts_and_zones_name_uncertain(tmp_path):
    from agrostress.batch.task import count_pixels
    from api.zones import class_zones

    classes = np.array([[0, 3], [NODATA, 2]], np.uint8)
    counts = count_pixels(classes, np.ones((2, 2), bool), ["healthy", "nitrogen_deficiency",
                                                           "yellow_rust"])
    assert counts["uncertain"] == 1 and counts["nodata"] == 1 and counts["healthy"] == 1
    from rasterio.transform import from_origin

    from agrostress.outputs.cog import class_colormap, write_cog

    tif = tmp_path / "m.tif"
    write_cog(tif, classes, crs="EPSG:32631", transform=from_origin(300000, 5300000, 10, 10),
              nodata=NODATA, colormap=class_colormap(), band_names=["stress class"])
    names = {f["properties"]["class_name"] for f in class_zones(tif, ["healthy",
             "nitrogen_deficiency", "yellow_rust"])["features"]}
    assert names == {"healthy", "yellow_rust", "uncertain"}
