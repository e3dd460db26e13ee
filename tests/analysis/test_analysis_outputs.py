"""Maps, summaries and files of the core path: COG validity, georeferencing, nodata, PNGs."""

from __future__ import annotations

import json

import numpy as np
import rasterio

from agrostress.analysis import analyse, grid_transform
from agrostress.cube import CLASS_NAMES, UNCERTAIN_CODE, cube_crs
from agrostress.outputs import validate_cog
from tests.analysis.analysis_helpers import cloudy_cube, png_is_nontrivial


def test_result_shapes_and_contract(analysed, cube):
    r = analysed
    ny, nx = cube.sizes["y"], cube.sizes["x"]
    assert r.classes.dtype == np.uint8 and r.classes.shape == (ny, nx)
    assert r.probabilities.dtype == np.float32 and r.probabilities.shape == (3, ny, nx)
    assert list(r.probabilities["class"].values) == list(CLASS_NAMES)
    assert r.confidence.dtype == np.float32 and r.insufficient.dtype == bool
    valid = ~r.insufficient.values
    p = r.probabilities.values
    np.testing.assert_allclose(p[:, valid].sum(axis=0), 1.0, atol=1e-5)
    np.testing.assert_array_equal(r.classes.values[valid], p[:, valid].argmax(axis=0))
    np.testing.assert_allclose(r.confidence.values[valid], p[:, valid].max(axis=0))
    assert r.classes.rio.crs == cube_crs(cube)
    assert r.transform == grid_transform(cube) == cube.rio.transform()
    assert r.model_card["architecture"] == "ffdnn"
    assert r.timings["total"] > 0


def test_field_summary_and_totals(analysed, cube, fields_gdf):
    r = analysed
    assert [f.field_id for f in r.fields] == sorted(fields_gdf["field_id"].tolist())
    truth = dict(zip(fields_gdf["field_id"], fields_gdf["class_name"], strict=True))
    for f in r.fields:
        assert f.true_label == truth[f.field_id]
        assert f.call in CLASS_NAMES
        assert 1 / 3 <= f.confidence <= 1
        assert abs(sum(f.class_fractions.values()) - 1) < 1e-9
        assert abs(sum(f.mean_probabilities.values()) - 1) < 1e-5
        assert 0 < f.valid_pixel_share <= 1
        pixels = int((cube["field_id"].values == f.field_id).sum())
        assert f.pixels == pixels and abs(f.area_ha - pixels * 100 / 1e4) < 1e-9
    ha = r.totals["hectares"]
    assert abs(ha["total"] - cube.sizes["y"] * cube.sizes["x"] * 100 / 1e4) < 1e-9
    assert abs(sum(ha[n] for n in CLASS_NAMES) + ha["uncertain"] + ha["nodata"]
               - ha["total"]) < 1e-9


def test_cogs_valid_and_georeferenced_like_the_cube(written, cube):
    out, paths = written
    crs, transform = cube_crs(cube), cube.rio.transform()
    for name in ("stress_map", "probabilities", "evidence"):
        valid, errors, _ = validate_cog(paths[name])
        assert valid, (name, errors)
        with rasterio.open(paths[name]) as src:
            assert src.crs == rasterio.crs.CRS.from_wkt(crs.to_wkt())
            assert src.transform == transform
            assert (src.height, src.width) == (cube.sizes["y"], cube.sizes["x"])
            assert src.overviews(1), f"{name} has no overviews"
    with rasterio.open(paths["stress_map"]) as src:
        assert src.dtypes[0] == "uint8" and src.nodata == 255
        cmap = src.colormap(1)
        assert cmap[255][3] == 0 and all(cmap[k][3] == 255 for k in range(3))
        assert src.tags()["CLASS_NAMES"] == ",".join([*CLASS_NAMES, "uncertain", "too_early",
                                                     "not_wheat"])
        assert src.descriptions[0] == "stress class"
    with rasterio.open(paths["probabilities"]) as src:
        assert src.count == 4 and src.dtypes[0] == "float32"
        assert list(src.descriptions) == [f"p_{n}" for n in CLASS_NAMES] + ["confidence"]
    assert "paletted" in paths["stress_map_style"].read_text()


def test_files_match_the_result(written, analysed):
    out, paths = written
    with rasterio.open(paths["stress_map"]) as src:
        np.testing.assert_array_equal(src.read(1), analysed.classes.values)
    with rasterio.open(paths["probabilities"]) as src:
        np.testing.assert_array_equal(src.read(1), analysed.probabilities.values[0])
    summary = json.loads(paths["summary"].read_text())
    assert summary["format"].startswith("agrostress-analysis")
    assert [f["call"] for f in summary["fields"]] == [f.call for f in analysed.fields]
    assert summary["explanations"]["completeness"]["passed"] is True
    att = json.loads(paths["attributions"].read_text())
    T, F = len(att["dates"]), len(att["features"])
    assert att["method"] == "ig" and att["fields"]
    assert np.asarray(att["fields"][0]["heatmap"]).shape == (T, F)
    assert set(att) == set(analysed.attributions.to_dict())  # the typed result's JSON form
    assert att["explained_pixels"] == len(analysed.attributions.pixels)
    npz = np.load(paths["pixel_attributions"])
    assert npz["attributions"].shape[1:] == (T, F)
    assert set(paths) >= {"stress_map", "probabilities", "stress_map_png", "summary",
                          "attributions", "attributions_png", "evidence"}
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]


def test_pngs_are_produced_and_nontrivial(written):
    _, paths = written
    pngs = [p for p in paths.values() if p.suffix == ".png"]
    assert {p.name for p in pngs} >= {
        "stress_map.png", "attributions.png", "attributions_fields.png", "trajectories.png",
        "probability_histogram.png", "evidence.png",
    }
    for p in pngs:
        assert png_is_nontrivial(p), p.name


def test_nodata_where_data_is_insufficient(cube, model):
    cloudy = cloudy_cube(cube, slice(0, 12), slice(0, 40))
    r = analyse(cloudy, model)
    bad = r.insufficient.values
    assert bad[:12].all()
    assert (r.classes.values[bad] == 255).all()
    assert np.isnan(r.probabilities.values[:, bad]).all()
    assert np.isnan(r.confidence.values[bad]).all()
    assert (r.classes.values[~bad] <= UNCERTAIN_CODE).all()
    assert r.totals["hectares"]["nodata"] >= 12 * 40 * 100 / 1e4
    fid = cube["field_id"].values
    for f in r.fields:
        in_block = (fid[:12] == f.field_id).sum() / (fid == f.field_id).sum()
        assert f.valid_pixel_share <= 1 - in_block + 1e-9
        if f.valid_pixel_share < 0.25:
            assert f.call is None and f.confidence is None


def test_fully_cloudy_tile_is_nodata_not_an_error(cube, model):
    cloudy = cloudy_cube(cube, slice(0, 16), slice(0, 16))
    r = analyse(cloudy, model, tile=16)
    assert (r.classes.values[:16, :16] == 255).all()
    assert (r.classes.values[16:, 16:] != 255).any()


def test_fields_from_polygons_in_another_crs(cube, model, fields_gdf, analysed):
    gdf = fields_gdf[["field_id", "geometry"]].to_crs("EPSG:4326")
    r = analyse(cube, model, fields=gdf, trajectory_features=None)
    assert r.meta["field_source"] == "polygons"
    assert [f.field_id for f in r.fields] == fields_gdf["field_id"].tolist()
    same = r.field_index.values == np.where(cube["field_id"].values > 0,
                                           cube["field_id"].values, 0)
    assert same.mean() > 0.95  # rasterised polygons ≈ the simulator's field raster
    by_id = {f.field_id: f for f in analysed.fields}
    for f in r.fields:
        assert f.true_label == by_id[f.field_id].true_label
        area = float(fields_gdf.set_index("field_id").loc[f.field_id, "area_ha"])
        assert abs(f.polygon_area_ha - area) < 1e-6 * area  # measured in the cube's CRS
        assert abs(f.area_ha - by_id[f.field_id].area_ha) < 0.2 * f.area_ha


def test_no_fields_at_all(cube, model):
    r = analyse(cube.drop_vars(["field_id"]), model, explain=True, explain_pixels=4)
    assert r.fields == [] and r.field_index is None
    assert r.attributions.fields == []
    assert r.attributions.classes  # explained per predicted class instead


def test_crop_cuts_maps_evidence_and_explained_pixels(analysed):
    """``AnalysisResult.crop``: every map and the evidence cut to the window, the explained
    pixels inside it re-indexed, the transform moved; summaries unchanged."""
    r0, c0, h, w = 5, 7, 20, 18
    sub = analysed.crop(r0, c0, h, w)
    assert analysed.crop(0, 0, *analysed.classes.shape) is analysed
    for name in ("classes", "confidence", "insufficient"):
        np.testing.assert_array_equal(getattr(sub, name).values,
                                      getattr(analysed, name).values[r0:r0 + h, c0:c0 + w])
    assert sub.probabilities.shape[1:] == (h, w)
    assert sub.attributions.evidence.shape == (h, w)
    px, full = sub.attributions.pixels, analysed.attributions.pixels
    inside = ((full.rows >= r0) & (full.rows < r0 + h)
              & (full.cols >= c0) & (full.cols < c0 + w))
    assert len(px.rows) == int(inside.sum())
    np.testing.assert_array_equal(px.rows, full.rows[inside] - r0)
    assert sub.transform.c == analysed.transform.c + c0 * analysed.transform.a
    assert sub.meta["batch_window"] == [r0, c0, h, w] and sub.fields is analysed.fields
