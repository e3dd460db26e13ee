"""Only wheat gets a wheat verdict: the parcels' crop attribute masks everything else."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import typer
from typer.testing import CliRunner

from agrostress.analysis import analyse
from agrostress.analysis.crops import PRESETS, CropSelection, crop_selection
from agrostress.commands import demo as demo_cmd
from agrostress.commands import predict as predict_cmd
from agrostress.cube import NODATA, NOT_WHEAT, NOT_WHEAT_CODE
from agrostress.simulate import write_scene

CROPS = ["BTH", "MIS", "BTH", "PPH", "bdh ", None]  # RPG codes: 1, 3, 5 wheat (5 durum)


@pytest.fixture(scope="module")
def parcels(fields_gdf):
    gdf = fields_gdf[["field_id", "geometry"]].copy()
    gdf["CODE_CULTU"] = CROPS[: len(gdf)]
    return gdf


def _inside(result, wheat) -> np.ndarray:
    """Pixels of ``result``'s grid inside the polygons ``wheat``."""
    from agrostress.analysis.fields import rasterise_fields

    return rasterise_fields(wheat.to_crs(result.meta["crs"]), result.classes.shape,
                            rasterio.Affine(*result.meta["transform"])) > 0


def test_selection_rules():
    sel = crop_selection("rpg")
    assert sel == PRESETS["rpg"]
    frame = gpd.GeoDataFrame({"CODE_CULTU": ["BTH", " bdh", "MIS", None, 3.0]})
    assert sel.is_wheat(frame).tolist() == [True, True, False, False, False]
    codes = crop_selection(column="EC_hcat_c", values="3301010101")
    assert codes.is_wheat(gpd.GeoDataFrame({"EC_hcat_c": [3301010101, 3301010101.0, 33]})
                          ).tolist() == [True, True, False]
    assert crop_selection("rpg", values=["BTH"]).values == frozenset({"bth"})
    assert crop_selection() is None
    with pytest.raises(ValueError, match="unknown crop preset"):
        crop_selection("nope")
    with pytest.raises(ValueError, match="crop column"):
        crop_selection(values="BTH")
    with pytest.raises(ValueError, match="wheat-values"):
        crop_selection(column="crop")
    with pytest.raises(ValueError, match="no crop column 'crop'"):
        CropSelection("crop", frozenset({"x"})).is_wheat(frame)


def test_pixels_outside_wheat_parcels_get_no_wheat_class(cube, model, parcels):
    sel = crop_selection("rpg")
    res = analyse(cube, model, fields=parcels, crops=sel, trajectory_features=None)
    cls = np.asarray(res.classes.values)
    wheat = _inside(res, parcels[sel.is_wheat(parcels)])
    assert wheat.any() and (~wheat).any()
    # the target: 0 pixels outside wheat parcels with a wheat class
    assert not np.isin(cls[~wheat], [0, 1, 2, 3, 4]).any()
    assert (cls[~wheat] == NOT_WHEAT_CODE).all()
    assert (cls[wheat] != NOT_WHEAT_CODE).all()
    assert np.isnan(np.asarray(res.probabilities.values)[:, ~wheat]).all()
    assert np.isnan(np.asarray(res.confidence.values)[~wheat]).all()
    calls = {f.field_id: f.call for f in res.fields}
    for fid, crop in zip(parcels["field_id"], parcels["CODE_CULTU"], strict=True):
        if sel.is_wheat(gpd.GeoDataFrame({"CODE_CULTU": [crop]}))[0]:
            assert calls[fid] != NOT_WHEAT
        else:
            assert calls[fid] == NOT_WHEAT
    row = next(f for f in res.fields if f.call == NOT_WHEAT)
    assert row.class_fractions[NOT_WHEAT] == 1.0 and row.confidence is None
    assert res.totals["pixels"][NOT_WHEAT] == int((~wheat).sum())
    assert res.meta["wheat_mask"]["column"] == "CODE_CULTU"

    # the same scene unmasked: the wheat parcels' pixels are judged as before
    plain = analyse(cube, model, fields=parcels, trajectory_features=None)
    pc = np.asarray(plain.classes.values)
    assert (pc[wheat] == cls[wheat]).mean() > 0.9  # only the wheat reference changed
    assert not (pc == NOT_WHEAT_CODE).any()


def test_wheat_parcels_alone_mask_a_scene_without_fields(cube, model, parcels):
    """The batch's form: the wheat parcels themselves, no field summaries; none at all means
    the whole scene is not wheat."""
    wheat_only = parcels[parcels["CODE_CULTU"] == "BTH"]
    res = analyse(cube, model, wheat_parcels=wheat_only, trajectory_features=None)
    cls = np.asarray(res.classes.values)
    inside = _inside(res, wheat_only)
    assert (cls[~inside] == NOT_WHEAT_CODE).all() and (cls[inside] != NOT_WHEAT_CODE).all()
    none = analyse(cube, model, wheat_parcels=wheat_only.iloc[:0], trajectory_features=None)
    assert (np.asarray(none.classes.values) == NOT_WHEAT_CODE).all()


def test_a_crop_attribute_needs_the_parcels(cube, model):
    with pytest.raises(ValueError, match="needs field polygons"):
        analyse(cube, model, crops=crop_selection("rpg"))


# --------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def app():
    a = typer.Typer()
    predict_cmd.register(a)
    demo_cmd.register(a)  # two commands: typer keeps the command name
    return a


def test_cli_predict_with_a_crop_column(app, scene, parcels, model_dir, tmp_path):
    cube, gdf = scene
    cube_path = write_scene(cube, gdf, tmp_path / "scene.zarr")
    fields = tmp_path / "parcels.gpkg"
    parcels.to_file(fields)
    out = tmp_path / "maps"
    res = CliRunner().invoke(app, [
        "predict", "--model", str(model_dir), "--cube", str(cube_path), "--out", str(out),
        "--fields", str(fields), "--crop-column", "CODE_CULTU", "--wheat-values", "BTH,BDH",
        "--no-plots", "--threads", "1",
    ])
    assert res.exit_code == 0, res.output
    assert "not wheat" in res.output
    summary = json.loads((out / "summary.json").read_text())
    calls = [f["call"] for f in summary["fields"]]
    assert calls.count(NOT_WHEAT) == 3
    with rasterio.open(out / "stress_map.tif") as src:
        cls = src.read(1)
        crs, transform = src.crs, src.transform
        assert src.tags()["CLASS_5"] == NOT_WHEAT
        assert src.colormap(1)[NOT_WHEAT_CODE][3] == 255
    assert f'value="{NOT_WHEAT_CODE}"' in (out / "stress_map.qml").read_text()
    wheat = _inside_map(parcels[parcels["CODE_CULTU"].isin(["BTH", "bdh "])], cls, crs, transform)
    assert not np.isin(cls[~wheat], [0, 1, 2, 3, 4]).any()
    assert (cls[~wheat] == NOT_WHEAT_CODE).all() and (cls != NODATA).any()

    bad = CliRunner().invoke(app, [
        "predict", "--model", str(model_dir), "--cube", str(cube_path), "--out",
        str(tmp_path / "bad"), "--fields", str(fields), "--crop-column", "crop",
        "--wheat-values", "BTH", "--no-plots"])
    assert bad.exit_code == 2 and "no crop column 'crop'" in bad.output
    assert not (tmp_path / "bad").exists()
    nofields = CliRunner().invoke(app, [
        "predict", "--model", str(model_dir), "--cube", str(cube_path), "--out",
        str(tmp_path / "bad"), "--crop-preset", "rpg", "--no-plots"])
    assert nofields.exit_code == 2 and "--fields" in nofields.output


def _inside_map(wheat, cls, crs, transform) -> np.ndarray:
    from agrostress.analysis.fields import rasterise_fields

    return rasterise_fields(wheat.to_crs(crs), cls.shape, transform) > 0
