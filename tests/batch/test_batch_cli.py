"""``agrostress batch`` from the command line (in-process Dask: ``--workers 0``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pytest
import typer
from typer.testing import CliRunner

from agrostress.batch import Manifest
from agrostress.batch.manifest import MANIFEST_NAME
from agrostress.settings import get_settings
from tests.batch.batch_helpers import END, START, batch_app


@pytest.fixture
def app() -> typer.Typer:
    return batch_app()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.chdir(tmp_path)  # no stray .env file
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def _text(res: object) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join(res.output.split())  # type: ignore[attr-defined]


def _args(region_scene: dict, model: Path, out: Path, *extra: str) -> list[str]:
    return [
        "batch", "--region", str(region_scene["region"]), "--start", START, "--end", END,
        "--source", "files", "--input", str(region_scene["folder"]), "--out", str(out),
        "--model", str(model), *extra,
    ]  # fmt: skip


def test_cli_maps_a_region(app, env, region_scene, tiny_model_dir, tmp_path) -> None:
    out = tmp_path / "out"
    args = _args(region_scene, tiny_model_dir, out, "--tile-size", "48", "--workers", "0")
    res = CliRunner().invoke(app, [*args, "--fields", str(region_scene["fields"])])
    assert res.exit_code == 0, res.output
    assert "batch summary" in res.output and "km²/h" in res.output
    m = Manifest.load(out / MANIFEST_NAME)
    assert m.complete and len(m.tiles) == 1
    for name in ("stress_map.tif", "stress_map.vrt", "probabilities.tif", "fields.gpkg"):
        assert (out / name).exists()
    assert len(gpd.read_parquet(out / "fields.parquet")) > 0
    # the same command again: nothing to compute
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert Manifest.load(out / MANIFEST_NAME).runs[-1]["skipped"] == 1


def test_cli_refuses_another_request_in_the_same_folder(
    app, env, region_scene, tiny_model_dir, run_copy
) -> None:
    res = CliRunner().invoke(app, _args(region_scene, tiny_model_dir, run_copy, "--tile-size", "48"))
    assert res.exit_code == 2
    assert "different request" in _text(res) and "--force" in _text(res)


@pytest.mark.parametrize(
    ("region_text", "message"),
    [
        ('{"type": "Point", "coordinates": [3, 48]}', "Polygon"),
        ("not json at all", "cannot read"),
    ],
)
def test_cli_rejects_bad_regions(
    app, env, region_scene, tiny_model_dir, tmp_path, region_text, message
) -> None:
    bad = tmp_path / "bad.geojson"
    bad.write_text(region_text)
    scene = {**region_scene, "region": bad}
    res = CliRunner().invoke(app, _args(scene, tiny_model_dir, tmp_path / "out"))
    assert res.exit_code == 2
    assert message in _text(res)
    assert not (tmp_path / "out" / MANIFEST_NAME).exists()


def test_cli_workers_and_scheduler_are_exclusive(
    app, env, region_scene, tiny_model_dir, tmp_path
) -> None:
    args = _args(region_scene, tiny_model_dir, tmp_path / "out", "--workers", "2")
    res = CliRunner().invoke(app, [*args, "--scheduler", "tcp://127.0.0.1:1"])
    assert res.exit_code == 2 and "either" in _text(res)


def test_cli_device(app, env, region_scene, tiny_model_dir, tmp_path) -> None:
    """``--device``: a device missing here is refused before anything runs; cpu maps."""
    import torch

    if not torch.cuda.is_available():
        args = _args(region_scene, tiny_model_dir, tmp_path / "gpu", "--device", "cuda")
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 2 and "no CUDA device here" in _text(res)
        assert not (tmp_path / "gpu" / MANIFEST_NAME).exists()
    res = CliRunner().invoke(app, _args(region_scene, tiny_model_dir, tmp_path / "cpu",
                                        "--device", "cpu"))
    assert res.exit_code == 0, _text(res)
    assert (tmp_path / "cpu" / MANIFEST_NAME).exists()


def test_cli_missing_files_folder(app, env, region_scene, tiny_model_dir, tmp_path) -> None:
    args = _args(region_scene, tiny_model_dir, tmp_path / "out")
    args[args.index("--input") + 1] = str(tmp_path / "nowhere")
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2 and "does not exist" in _text(res)
