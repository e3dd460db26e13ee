"""Bad input gives a clear error and leaves nothing behind; the predict and demo commands."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from agrostress.analysis import analyse, write_outputs
from agrostress.commands import demo as demo_cmd
from agrostress.commands import predict as predict_cmd
from agrostress.cube import CubeError
from agrostress.simulate import write_scene


@pytest.fixture(scope="module")
def app():
    """Only the two commands under test (the other commands belong to other packages)."""
    a = typer.Typer()
    predict_cmd.register(a)
    demo_cmd.register(a)
    return a


@pytest.fixture(scope="module")
def cube_path(scene, tmp_path_factory):
    cube, gdf = scene
    return write_scene(cube, gdf, tmp_path_factory.mktemp("cubes") / "scene.zarr")


@pytest.fixture(scope="module")
def fields_path(fields_gdf, tmp_path_factory):
    path = tmp_path_factory.mktemp("fields") / "fields.geojson"
    fields_gdf[["field_id", "class_name", "geometry"]].to_crs("EPSG:4326").to_file(path)
    return path


def _nothing_left(out) -> None:
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


def _season_shifted(cube):
    return cube.assign_coords(time=cube["time"].values + np.timedelta64(200, "D"))


# --------------------------------------------------------------------------- library


def test_invalid_cube_is_refused(cube, model):
    bad = cube.assign(reflectance=cube["reflectance"].astype("float64"))
    with pytest.raises(CubeError, match="float32"):
        analyse(bad, model)
    with pytest.raises(CubeError, match="scl"):
        analyse(cube.drop_vars("scl"), model)


def test_model_cube_mismatch_is_refused(cube, model):
    with pytest.raises(ValueError, match="model/cube mismatch: grid DOY 60–200"):
        analyse(_season_shifted(cube), model)


def test_empty_or_bad_fields_are_refused(cube, model, fields_gdf):
    with pytest.raises(ValueError, match="no polygons"):
        analyse(cube, model, fields=fields_gdf.iloc[:0])
    with pytest.raises(ValueError, match="no CRS"):
        analyse(cube, model, fields=fields_gdf.set_crs(None, allow_override=True))
    far = fields_gdf.translate(xoff=1e5)
    with pytest.raises(ValueError, match="no field polygon overlaps"):
        analyse(cube, model, fields=fields_gdf.set_geometry(far))


def test_failed_write_leaves_nothing(analysed, tmp_path, monkeypatch):
    from agrostress.outputs import render

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(render, "histogram_png", boom)
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="disk full"):
        write_outputs(analysed, out)
    _nothing_left(out)


def test_out_dir_rules(analysed, tmp_path):
    analysed = dataclasses.replace(analysed, attributions=None, trajectories=None)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty"):
        write_outputs(analysed, foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"
    out = tmp_path / "run"
    write_outputs(analysed, out, plots=False)
    first = (out / "summary.json").stat().st_mtime_ns
    with pytest.raises(FileExistsError):
        write_outputs(analysed, out, overwrite=False, plots=False)
    paths = write_outputs(analysed, out, plots=False)  # an earlier output is replaced whole
    assert (out / "summary.json").stat().st_mtime_ns >= first
    assert not (out / "trajectories.png").exists() and "trajectories" not in paths
    empty = tmp_path / "empty"
    empty.mkdir()
    assert write_outputs(analysed, empty, plots=False)["stress_map"].is_file()


# --------------------------------------------------------------------------- CLI


def test_cli_predict(app, cube_path, fields_path, model_dir, tmp_path):
    out = tmp_path / "maps"
    res = CliRunner().invoke(app, [
        "predict", "--model", str(model_dir), "--cube", str(cube_path), "--out", str(out),
        "--fields", str(fields_path), "--explain", "--explain-pixels", "4", "--tile", "16",
        "--no-plots", "--threads", "1",
    ])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scene"]["field_source"] == "polygons" and len(summary["fields"]) == 6
    assert summary["scene"]["tiles"] == 9
    for name in ("stress_map.tif", "probabilities.tif", "stress_map.png", "attributions.json",
                 "attributions.png", "evidence.tif"):
        assert (out / name).is_file(), name
    assert "IG completeness" in res.output and "passed" in res.output
    assert summary["decision"]["priors"]["healthy"] == pytest.approx(0.7)  # the default


def test_cli_predict_priors_and_abstention(app, cube_path, model_dir, tmp_path):
    out = tmp_path / "maps"
    res = CliRunner().invoke(app, [
        "predict", "--model", str(model_dir), "--cube", str(cube_path), "--out", str(out),
        "--no-plots", "--priors", "healthy=2,nitrogen_deficiency=1,yellow_rust=1",
        "--min-confidence", "0.99"])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["decision"]["priors"] == pytest.approx(
        {"healthy": 0.5, "nitrogen_deficiency": 0.25, "yellow_rust": 0.25})
    assert summary["decision"]["min_confidence"] == 0.99
    assert summary["totals"]["pixels"]["uncertain"] > 0 and "uncertain" in res.output


@pytest.mark.parametrize("case", ["invalid_cube", "mismatch", "empty_fields", "bad_fields",
                                  "missing_cube", "bad_model", "bad_method", "bad_priors"])
def test_cli_predict_bad_input(app, case, cube, cube_path, fields_path, model_dir, tmp_path):
    cube_arg, extra, model_arg = str(cube_path), [], str(model_dir)
    if case == "invalid_cube":
        bad = tmp_path / "bad.zarr"
        cube.drop_vars("scl").drop_vars("platform").to_zarr(bad, zarr_format=2)
        cube_arg = str(bad)
    elif case == "mismatch":
        shifted = tmp_path / "shifted.zarr"
        write_scene(_season_shifted(cube), _fields(fields_path), shifted)
        cube_arg = str(shifted)
    elif case == "empty_fields":
        empty = tmp_path / "empty.geojson"
        empty.write_text('{"type": "FeatureCollection", "features": []}')
        extra = ["--fields", str(empty)]
    elif case == "bad_fields":
        junk = tmp_path / "junk.geojson"
        junk.write_text("this is not geojson")
        extra = ["--fields", str(junk)]
    elif case == "missing_cube":
        cube_arg = str(tmp_path / "nowhere.zarr")
    elif case == "bad_model":
        model_arg = str(tmp_path)
    elif case == "bad_method":
        extra = ["--explain", "--method", "lime"]
    elif case == "bad_priors":
        extra = ["--priors", "healthy=0.9,yellow_rust=0.1"]
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["predict", "--model", model_arg, "--cube", cube_arg,
                                   "--out", str(out), *extra])
    assert res.exit_code == 2, res.output
    assert "error:" in res.output
    _nothing_left(out)


def _fields(path):
    import geopandas as gpd

    return gpd.read_file(path)


def test_cli_demo_on_a_given_cube(app, cube_path, model_dir, tmp_path):
    out = tmp_path / "demo"
    res = CliRunner().invoke(app, ["demo", "--model", str(model_dir), "--cube", str(cube_path),
                                   "--out", str(out), "--explain-pixels", "4"])
    assert res.exit_code == 0, res.output
    assert "truth vs call" in res.output and "time:" in res.output
    assert (out / "trajectories.png").is_file() and (out / "attributions_fields.png").is_file()


def test_cli_demo_without_a_model_says_how_to_get_one(app, tmp_path):
    res = CliRunner().invoke(app, ["demo", "--model", str(tmp_path / "none"),
                                   "--out", str(tmp_path / "demo")])
    assert res.exit_code == 2
    assert "pipelines.train_default" in res.output
    _nothing_left(tmp_path / "demo")


def test_cli_registers_predict_and_demo():
    from agrostress import cli

    assert {"predict", "demo"} <= set(cli.COMMAND_MODULES)


@pytest.mark.slow
def test_demo_default_scene_end_to_end(model, tmp_path):
    """The embedded sample scene (or its simulation) through the demo's library entry."""
    from agrostress.analysis import SAMPLE_SCENE, run_demo
    from agrostress.cube import open_cube

    cube = open_cube(SAMPLE_SCENE) if SAMPLE_SCENE.exists() else None
    report = run_demo(tmp_path / "demo", model, cube=cube, explain_pixels=6)
    assert {r["true_label"] for r in report.rows} == {"healthy", "nitrogen_deficiency",
                                                     "yellow_rust"}
    assert all(r["call"] for r in report.rows)
    assert report.result.attributions.completeness["passed"]
    assert pd.Series(report.timings).gt(0).all()
