"""Fixtures for the batch tests: a simulated region written as files, clients (the model: the
suite's ``tiny_model_dir``)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import shapely

from agrostress.settings import Settings
from tests.batch.batch_helpers import (  # also registers the test-only "slowfiles" source
    END,
    HEIGHT,
    ORIGIN,
    START,
    TILE,
    WIDTH,
    region_polygon_utm,
    utm_to_wgs84,
)


@pytest.fixture(scope="session")
def region_scene(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A simulated scene written as a GeoTIFF folder, its field polygons and a region file."""
    from agrostress.cube import write_geotiff_folder
    from agrostress.simulate import SimulationConfig, simulate_scene

    root = tmp_path_factory.mktemp("region")
    ds, fields = simulate_scene(
        SimulationConfig(fields=5, width=WIDTH, height=HEIGHT, seed=3, origin=ORIGIN)
    )
    # every third acquisition (~9 days apart) keeps the per-tile reads short
    folder = write_geotiff_folder(ds.isel(time=slice(None, None, 3)), root / "s2")
    region = root / "region.geojson"
    region.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {},
                        "geometry": json.loads(
                            shapely.to_geojson(utm_to_wgs84(region_polygon_utm()))
                        ),
                    }
                ],
            }
        )
    )
    fields_file = root / "fields.gpkg"
    fields[["field_id", "geometry"]].to_file(fields_file, driver="GPKG")
    return {"folder": folder, "region": region, "fields": fields_file, "cube": ds}


@pytest.fixture(scope="session")
def files_settings(region_scene: dict) -> Settings:
    return Settings(files_dir=region_scene["folder"], _env_file=None)


@pytest.fixture(scope="session")
def local_client() -> Iterator[object]:
    """An in-process Dask cluster (2 threads): fast, and sees test-registered sources."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address="127.0.0.1:0"
    )
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="session")
def single_pass(region_scene: dict, tiny_model_dir: Path, files_settings: Settings) -> dict:
    """The region analysed in one pass (the reference a mosaic must equal)."""
    from agrostress import analysis
    from agrostress.analysis.not_wheat import NotWheatDetector
    from agrostress.ingest.fetch import fetch_cube
    from agrostress.models import load

    cube = fetch_cube(
        "files", region_scene["region"], START, END, settings=files_settings, max_area_km2=None
    )
    detector = NotWheatDetector.from_settings(files_settings)  # as the batch runs it
    result = analysis.analyse(cube, load(tiny_model_dir), not_wheat=detector)
    return {
        "classes": np.asarray(result.classes.values),
        "probabilities": np.asarray(result.probabilities.values),
        "confidence": np.asarray(result.confidence.values),
        "transform": cube.rio.transform(),
    }


@pytest.fixture(scope="session")
def done_run(
    tmp_path_factory: pytest.TempPathFactory,
    region_scene: dict,
    tiny_model_dir: Path,
    files_settings: Settings,
    local_client: object,
) -> Path:
    """One complete batch over the region (4 tiles of 24 px, with fields); tests copy it."""
    from agrostress.batch import run_batch

    out = tmp_path_factory.mktemp("run") / "out"
    run_batch(
        region_scene["region"], START, END, "files", out, tiny_model_dir,
        fields=region_scene["fields"], tile_size=TILE, client=local_client,
        settings=files_settings,
    )  # fmt: skip
    return out


@pytest.fixture
def run_copy(done_run: Path, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(done_run, out)
    return out
