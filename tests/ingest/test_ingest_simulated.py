"""The simulator as a source, and as the data behind the stub Sentinel Hub."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from agrostress.ingest import get_source, load_aoi
from tests.ingest.ingest_helpers import make_settings, sh_settings
from tests.ingest.ingest_synth import aoi_geojson
from tests.ingest.stub_sentinelhub import running

simulate = pytest.importorskip("agrostress.simulate", reason="simulator not available")

pytestmark = pytest.mark.slow

START, END = dt.date(2024, 4, 1), dt.date(2024, 5, 31)


@pytest.fixture(scope="module")
def sim_cube():
    cfg = simulate.SimulationConfig(
        fields=6,
        width=48,
        height=40,
        seed=3,
        epsg=32631,
        origin=(600000.0, 5000040.0),
        start=START.isoformat(),
        end=END.isoformat(),
    )
    ds, _ = simulate.simulate_scene(cfg)
    return ds


def test_simulated_source_is_deterministic_and_masked(sim_cube) -> None:
    aoi = load_aoi(aoi_geojson(sim_cube))
    src = get_source("simulated", make_settings())
    a = src.fetch(aoi, START, END)
    b = src.fetch(aoi, START, END)
    assert a["reflectance"].values.tobytes() == b["reflectance"].values.tobytes()
    assert a["scl"].values.tobytes() == b["scl"].values.tobytes()
    outside = ~aoi.mask()
    assert (a["scl"].values[:, outside] == 0).all()
    assert np.isnan(a["reflectance"].values[:, :, outside]).all()
    assert "label" in a and "field_id" in a
    assert a["time"].values.min() >= np.datetime64(START) and a.attrs["source"] == "simulated"


@pytest.mark.network
def test_stub_sentinelhub_serving_simulated_scenes(sim_cube, insecure_oauth) -> None:
    aoi = load_aoi(aoi_geojson(sim_cube))
    with running(sim_cube) as stub:
        ds = get_source("sentinelhub", sh_settings(stub, sh_max_px=20)).fetch(aoi, START, END)
    sub = sim_cube.sel(x=aoi.x, y=aoi.y)
    # what survives the UINT16 DN transport of Sentinel Hub (harmonised values, offset 0,
    # clamped at DN 0 — still data: dataMask says where data is)
    refl = sub["reflectance"].values
    expected = (np.clip(np.round(np.nan_to_num(refl) * 10000), 0, 65535).astype(np.float32)
                / np.float32(10000)).astype(np.float32)
    scl = sub["scl"].values.copy()
    inside = aoi.mask()
    keep = [i for i in range(len(scl)) if (scl[i][inside] != 0).any()]
    expected, scl = expected[keep], scl[keep]
    expected[:, :, ~inside] = np.nan
    scl[:, ~inside] = 0
    expected[np.broadcast_to((scl == 0)[:, None], expected.shape)] = np.nan
    np.testing.assert_array_equal(ds["time"].values, sub["time"].values[keep])
    np.testing.assert_array_equal(ds["scl"].values, scl)
    np.testing.assert_array_equal(ds["reflectance"].values, expected)
    assert ds.attrs["boa_offsets"] == [0.0] * ds.sizes["time"]
