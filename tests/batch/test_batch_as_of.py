"""``agrostress batch --as-of``: a region called in season sees nothing acquired later."""

from __future__ import annotations

import json

import geopandas as gpd
from typer.testing import CliRunner

from agrostress.batch import Manifest
from agrostress.batch.manifest import MANIFEST_NAME
from agrostress.settings import get_settings
from tests.batch.batch_helpers import batch_app, batch_args

AS_OF = "2024-05-20"


def test_batch_as_of_fetches_and_calls_up_to_the_date(region_scene, tiny_model_dir, tmp_path,
                                                       monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    out = tmp_path / "out"
    res = CliRunner().invoke(batch_app(), batch_args(region_scene, tiny_model_dir, out, "--as-of", AS_OF,
                                           "--fields", str(region_scene["fields"])))
    assert res.exit_code == 0, res.output
    m = Manifest.load(out / MANIFEST_NAME)
    assert m.complete and m.fingerprint["end"] == AS_OF
    tile = next((out / "tiles").iterdir())
    season = json.loads((tile / "summary.json").read_text())["season"]
    assert season["as_of"] == AS_OF and season["last_acquisition"] <= AS_OF
    table = gpd.read_parquet(out / "fields.parquet")
    assert {"frac_uncertain", "frac_too_early"} <= set(table.columns)
    bad = CliRunner().invoke(batch_app(), batch_args(region_scene, tiny_model_dir, tmp_path / "o2",
                                           "--as-of", "2024-09-01"))
    assert bad.exit_code == 2 and "outside the period" in " ".join(bad.output.split())
    get_settings.cache_clear()
