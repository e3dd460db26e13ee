"""The map viewer in headless Chromium (Debian's /usr/bin/chromium driven by Playwright).

Draw a field, run it on the simulated source, see the table, the zones over the field and the
images; a screenshot is saved in the test's tmp dir (set ``AGROSTRESS_VIEWER_SCREENSHOT=path``
to also copy it there, e.g. ``docs/img/viewer.png``).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "headless browser test needs Debian's chromium (apt-get install chromium)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")

from agrostress.settings import Settings  # noqa: E402
from tests.api.api_fakes import FakeCore  # noqa: E402
from tests.api.api_helpers import LiveServer, real_core_available  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.network]

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _drive(url: str, tmp_path: Path, timeout_ms: int, as_of: str | None = None,
           crop: str | None = None) -> dict[str, Any]:
    with sync_api.sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(CHROMIUM), headless=True, args=FLAGS,
            viewport={"width": 1400, "height": 1050},
        )
        try:
            page = ctx.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
            outside: list[str] = []
            page.on("request", lambda r: None if r.url.startswith((url, "data:", "blob:"))
                    else outside.append(r.url))
            page.goto(url + "/")
            page.wait_for_selector("#model option[value='ffdnn-test']", state="attached")

            # draw a field of a few hectares by clicking on the map, then close it
            page.click("#btn-clear")
            box = page.locator("#map").bounding_box()
            assert box is not None
            cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            k = box["width"] / 800  # screen px per SVG unit
            for dx, dy in ((-75, -62), (75, -62), (75, 62), (-75, 62)):
                page.mouse.click(cx + dx * k, cy + dy * k)
            assert page.locator("#map circle.vertex").count() == 4
            page.click("#btn-close")
            drawn = json.loads(page.input_value("#geojson"))
            assert drawn["type"] == "Polygon" and len(drawn["coordinates"][0]) == 5

            if crop:  # the drawn field as a pasted feature that names its crop (RPG code)
                page.fill("#geojson", json.dumps({"type": "FeatureCollection", "features": [
                    {"type": "Feature", "properties": {"CODE_CULTU": crop},
                     "geometry": drawn}]}))
                page.click("#btn-use")
                page.select_option("#crop-preset", "rpg")
            page.select_option("#source", "simulated")
            if as_of:
                page.fill("#as-of", as_of)
            page.check("#explain")
            page.click("#btn-run")
            page.wait_for_selector("#results:not([hidden])", timeout=timeout_ms)
            page.wait_for_function(
                "['img-map', 'img-attr'].every(i => document.getElementById(i).naturalWidth > 0)",
                timeout=30_000,
            )
            status = page.inner_text("#status")
            rows = page.locator("#fields-table tbody tr")
            cells = [rows.nth(0).locator("td").nth(i).inner_text() for i in range(8)]
            timelines = [page.locator("svg.timeline").nth(i).inner_html()
                         for i in range(page.locator("svg.timeline").count())]
            zones = page.locator("#map path.zone").count()
            shot = tmp_path / "viewer.png"
            page.screenshot(path=str(shot), full_page=True)
            return {"status": status, "rows": rows.count(), "cells": cells, "zones": zones,
                    "timelines": timelines,
                    "shot": shot, "problems": problems, "outside": outside, "drawn": drawn}
        finally:
            ctx.close()


def _check(out: dict[str, Any], srv: LiveServer) -> None:
    assert out["status"].startswith("done"), out["status"]
    assert not out["problems"], out["problems"]
    assert not out["outside"], f"the page fetched external resources: {out['outside']}"
    assert out["rows"] == 1 and out["zones"] >= 1
    with srv.client() as c:
        (analysis,) = c.get("/v1/analyses").json()["items"]
        a = c.get(analysis["links"]["self"]).json()
    assert a["status"] == "done" and a["request"]["source"] == "simulated"
    (field,) = a["result"]["fields"]
    assert out["cells"][1] == (field["call"] or "insufficient data")
    assert 1 < a["request"]["area_ha"] < 20  # the drawn field (a few ha)
    assert out["shot"].stat().st_size > 10_000
    target = os.environ.get("AGROSTRESS_VIEWER_SCREENSHOT")
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out["shot"], target)


def test_viewer_fake_core(serve: Callable[..., LiveServer], make_settings: Callable[..., Settings],
                          tmp_path: Path) -> None:
    srv = serve(core=FakeCore(delay_s=0.5).core())
    _check(_drive(srv.url, tmp_path, timeout_ms=60_000), srv)


def test_viewer_in_season_time_line(serve: Callable[..., LiveServer], tmp_path: Path) -> None:
    """An as-of date in the form reaches the request; each field's time line is drawn."""
    srv = serve(core=FakeCore().core())
    out = _drive(srv.url, tmp_path, timeout_ms=60_000, as_of="2024-05-15")
    _check(out, srv)
    with srv.client() as c:
        (analysis,) = c.get("/v1/analyses").json()["items"]
        a = c.get(analysis["links"]["self"]).json()
    assert a["request"]["as_of"] == "2024-05-15"
    (field,) = a["result"]["fields"]
    assert out["cells"][3] == field["call_since"] == "2024-05-15"
    (svg,) = out["timelines"]
    assert "polyline" in svg and svg.count("<rect") == 3 and "2024-05-15" in svg


@pytest.mark.slow
@pytest.mark.skipif(not real_core_available(), reason="agrostress.analysis not implemented yet")
def test_viewer_real_core(serve: Callable[..., LiveServer], make_settings: Callable[..., Settings],
                          tmp_path: Path) -> None:
    srv = serve(core=None)
    _check(_drive(srv.url, tmp_path, timeout_ms=300_000), srv)


@pytest.mark.slow
@pytest.mark.skipif(not real_core_available(), reason="agrostress.analysis not implemented yet")
def test_viewer_not_wheat(serve: Callable[..., LiveServer], tmp_path: Path) -> None:
    """A pasted field whose crop is maize (RPG 'MIS') with the RPG register chosen: the
    request carries the preset, the field is 'not_wheat' in the table and on the map."""
    srv = serve(core=None)
    out = _drive(srv.url, tmp_path, timeout_ms=300_000, crop="MIS")
    _check(out, srv)
    with srv.client() as c:
        (analysis,) = c.get("/v1/analyses").json()["items"]
        a = c.get(analysis["links"]["self"]).json()
    assert a["request"]["crops"] == {"column": "CODE_CULTU", "values": ["bdh", "bth"]}
    assert out["cells"][1] == "not_wheat"
