"""``agrostress batch --crop-column``: a region map gives a wheat class to wheat parcels only."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import rasterio
from typer.testing import CliRunner

from agrostress.analysis.fields import rasterise_fields
from agrostress.batch import Manifest
from agrostress.batch.manifest import MANIFEST_NAME
from agrostress.cube import NODATA, NOT_WHEAT, NOT_WHEAT_CODE
from agrostress.settings import get_settings
from tests.batch.batch_helpers import batch_app, batch_args


def test_batch_maps_not_wheat_outside_wheat_parcels(region_scene, tiny_model_dir, tmp_path,
                                                    monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    parcels = gpd.read_file(region_scene["fields"])
    parcels["EC_hcat_n"] = ["winter_common_soft_wheat", "grain_maize_corn_popcorn",
                            "winter_common_soft_wheat", "pasture_meadow_grassland_grass",
                            "winter_barley"][: len(parcels)]
    fields = tmp_path / "parcels.gpkg"
    parcels.to_file(fields)
    out = tmp_path / "out"
    res = CliRunner().invoke(batch_app(), batch_args(region_scene, tiny_model_dir, out, "--fields",
                                           str(fields), "--crop-preset", "eurocrops"))
    assert res.exit_code == 0, res.output
    m = Manifest.load(out / MANIFEST_NAME)
    assert m.complete and "wheat_parcels_sha256" in m.fingerprint
    with rasterio.open(out / "stress_map.tif") as src:
        cls, crs, transform = src.read(1), src.crs, src.transform
        assert src.tags()["CLASS_5"] == NOT_WHEAT
    wheat = parcels[parcels["EC_hcat_n"] == "winter_common_soft_wheat"]
    inside = rasterise_fields(wheat.to_crs(crs), cls.shape, transform) > 0
    mapped = cls != NODATA  # the region; nodata outside it
    assert (inside & mapped).any()
    # the target: with a parcel layer, 0 pixels outside wheat parcels get a wheat class
    assert not np.isin(cls[~inside], [0, 1, 2, 3, 4]).any()
    assert (cls[~inside & mapped] == NOT_WHEAT_CODE).all()
    assert (cls[inside & mapped] != NOT_WHEAT_CODE).all()
    table = gpd.read_parquet(out / "fields.parquet")
    assert "frac_not_wheat" in table.columns
    calls = dict(zip(table["EC_hcat_n"], table["call"], strict=False))
    assert calls["grain_maize_corn_popcorn"] == NOT_WHEAT
    assert calls["winter_barley"] == NOT_WHEAT
    assert all(c != NOT_WHEAT for c in table.loc[table["EC_hcat_n"]
                                                   == "winter_common_soft_wheat", "call"])
    # another crop selection is another request: the run is not resumed over it
    again = CliRunner().invoke(batch_app(), batch_args(region_scene, tiny_model_dir, out, "--fields",
                                             str(fields), "--crop-column", "EC_hcat_n",
                                             "--wheat-values", "winter_barley"))
    assert again.exit_code == 2, again.output
    nofields = CliRunner().invoke(batch_app(), batch_args(region_scene, tiny_model_dir, tmp_path / "o3",
                                                "--crop-preset", "rpg"))
    assert nofields.exit_code == 2 and "--fields" in nofields.output
    get_settings.cache_clear()
