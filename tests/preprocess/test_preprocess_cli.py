"""``agrostress preprocess`` end to end on a simulated scene and on bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from agrostress.commands import preprocess as preprocess_cmd
from agrostress.cube import cube_crs, write_zarr
from agrostress.preprocess import open_features
from tests.preprocess.pp_synth import make_cube


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    preprocess_cmd.register(app)

    @app.callback()
    def _root() -> None:  # keep "preprocess" as a sub-command
        pass

    return app


@pytest.mark.slow
def test_simulated_scene_to_feature_cube(app, small_scene, tmp_path):
    ds, _ = small_scene
    cube = write_zarr(ds, tmp_path / "scene.zarr")
    out = tmp_path / "features.zarr"
    r = CliRunner().invoke(
        app,
        [
            "preprocess",
            str(cube),
            "--out",
            str(out),
            "--grid",
            "60:200:5",
            "--features",
            "ffdnn,NDVI",
            "--chunk",
            "32",
            "--smooth",
        ],
    )
    assert r.exit_code == 0, r.output
    fs = open_features(out)
    assert fs["features"].shape == (29, 8, 64, 64)
    assert list(fs["feature"].values) == [
        "LAI",
        "LCC",
        "NDREI",
        "MTCI",
        "S2REP",
        "REDSI",
        "PSRI",
        "NDVI",
    ]
    assert cube_crs(fs) == cube_crs(ds)
    np.testing.assert_array_equal(fs["label"].values, ds["label"].values)
    ok = ~fs["insufficient_data"].values
    assert ok.mean() > 0.5
    assert np.isfinite(fs["features"].values[:, :, ok]).all()
    lai = fs["features"].sel(feature="LAI").values
    wheat = ds["land_cover"].values == 1
    assert np.nanmax(np.nanmedian(lai[:, wheat & ok], axis=1)) > 2  # a real season peak
    again = CliRunner().invoke(app, ["preprocess", str(cube), "--out", str(out)])
    assert again.exit_code == 2 and "exists" in again.output


def test_cli_errors(app, tmp_path):
    c = make_cube()
    path = write_zarr(c, tmp_path / "c.zarr")
    runner = CliRunner()
    r = runner.invoke(
        app,
        ["preprocess", str(path), "--out", str(tmp_path / "o.zarr"), "--features", "NDVI,BOGUS"],
    )
    assert r.exit_code == 2 and "unknown feature" in r.output
    r = runner.invoke(
        app, ["preprocess", str(path), "--out", str(tmp_path / "o.zarr"), "--grid", "300:360:5"]
    )
    assert r.exit_code == 2 and "season" in r.output
    r = runner.invoke(
        app, ["preprocess", str(tmp_path / "nope.zarr"), "--out", str(tmp_path / "o.zarr")]
    )
    assert r.exit_code == 2
    r = runner.invoke(
        app,
        [
            "preprocess",
            str(path),
            "--out",
            str(tmp_path / "o.zarr"),
            "--features",
            "bands",
            "--scl-drop",
            "0,9",
            "--dilation",
            "0",
        ],
    )
    assert r.exit_code == 0, r.output
    assert open_features(tmp_path / "o.zarr")["features"].shape == (29, 10, 6, 5)
