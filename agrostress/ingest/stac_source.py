"""STAC: any STAC API or static catalogue of Sentinel-2 L2A COGs (pystac-client + odc-stac).

* API catalogues are searched (``/search``: collection, AOI geometry, period, cloud cover);
  static catalogues (no ``/search``) are walked with pystac and filtered the same way locally.
* Assets are mapped to cube bands by earth-search keys (blue, green, red, rededge1-3, nir,
  nir08, swir16, swir22, scl), falling back to band names (B02..., SCL, also ``B05_20m``...).
* Every item is loaded on the AOI's 10 m UTM grid with odc-stac: 20 m bands bilinear, SCL
  nearest. The DN offset of each item is decided and pixel-checked by
  :mod:`~agrostress.ingest.harmonise`. Items of the same solar day are mosaicked (lowest cloud
  cover first, then id; first valid pixel wins).
"""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from agrostress.cube import BANDS
from agrostress.ingest.base import (
    CredentialsError,
    EmptyCatalogueError,
    IngestError,
    ProgressCallback,
    SourceConfigError,
    UpstreamError,
    finalize_cube,
    period_bounds,
    platform_code,
    register_source,
    report,
)
from agrostress.ingest.harmonise import check_offset, harmonise, offset_from_metadata

if TYPE_CHECKING:
    import pystac
    import xarray as xr

    from agrostress.ingest.aoi import AOI
    from agrostress.settings import Settings

LOGGER = logging.getLogger("agrostress.ingest")


ASSET_CANDIDATES: dict[str, tuple[str, ...]] = {
    "B02": ("blue", "B02", "B02_10m"),
    "B03": ("green", "B03", "B03_10m"),
    "B04": ("red", "B04", "B04_10m"),
    "B05": ("rededge1", "B05", "B05_20m"),
    "B06": ("rededge2", "B06", "B06_20m"),
    "B07": ("rededge3", "B07", "B07_20m"),
    "B08": ("nir", "B08", "B08_10m"),
    "B8A": ("nir08", "B8A", "B8A_20m"),
    "B11": ("swir16", "B11", "B11_20m"),
    "B12": ("swir22", "B12", "B12_20m"),
    "SCL": ("scl", "SCL", "SCL_20m"),
}


def asset_mapping(items: list[pystac.Item]) -> dict[str, str]:
    """Cube band (and SCL) → asset key present in every item; :class:`UpstreamError` if none."""
    mapping: dict[str, str] = {}
    for band, candidates in ASSET_CANDIDATES.items():
        key = next((c for c in candidates if all(c in it.assets for it in items)), None)
        if key is None:
            raise UpstreamError(
                f"STAC items lack an asset for {band} (tried {', '.join(candidates)}); "
                f"first item has {sorted(items[0].assets)}"
            )
        mapping[band] = key
    return mapping


@register_source("stac")
class StacSource:
    """Sentinel-2 L2A from a STAC API or a static STAC catalogue."""

    name = "stac"
    location_determined = True  # a pixel's values do not depend on the grid's extent
    load_chunk = 8
    """Items loaded per odc-stac call (bounds the memory held as raw DN)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.url = str(settings.stac_url)
        self.collection = settings.stac_collection

    def identity(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "collection": self.collection,
            "max_cloud_cover": self.settings.ingest_max_cloud_cover,
            "offset_check": self.settings.ingest_offset_check,
            "resampling": {"reflectance": "bilinear", "scl": "nearest"},
        }

    # ------------------------------------------------------------------ search

    def find_items(self, aoi: AOI, start: dt.date, end: dt.date) -> list[pystac.Item]:
        """Items of the collection intersecting the AOI in the period (sorted by time, id)."""
        import pystac_client
        from pystac_client.exceptions import APIError
        from pystac_client.warnings import FallbackToPystac, NoConformsTo

        t0, t1 = period_bounds(start, end)
        try:
            with warnings.catch_warnings():
                # a static catalogue has no conformance classes: expected, not worth a warning
                warnings.simplefilter("ignore", NoConformsTo)
                warnings.simplefilter("ignore", FallbackToPystac)
                client = pystac_client.Client.open(self.url)
                static = not client.conforms_to("ITEM_SEARCH")
                items = list(self._walk(client)) if static else []
            if not static:
                kwargs: dict[str, Any] = {}
                if self.settings.ingest_max_cloud_cover < 100:
                    kwargs["query"] = {
                        "eo:cloud_cover": {"lte": self.settings.ingest_max_cloud_cover}
                    }
                search = client.search(
                    collections=[self.collection],
                    intersects=aoi.to_geojson(),
                    datetime=f"{start.isoformat()}T00:00:00Z/{end.isoformat()}T23:59:59Z",
                    **kwargs,
                )
                items = list(search.items())
        except APIError as e:
            status = getattr(e, "status_code", None)
            if status in (401, 403):
                raise CredentialsError(f"STAC catalogue {self.url} answered {status}: {e}") from e
            raise UpstreamError(f"STAC catalogue {self.url} failed: {e}") from e
        except IngestError:
            raise
        except Exception as e:
            raise UpstreamError(
                f"cannot read STAC catalogue {self.url}: {type(e).__name__}: {e}"
            ) from e
        items = [it for it in items if self._keep(it, aoi, t0, t1)]
        items.sort(key=lambda it: (_item_time(it), it.id))
        return items

    def _walk(self, catalog: Any) -> Iterator[pystac.Item]:
        coll = None
        try:
            coll = catalog.get_child(self.collection)
        except Exception:
            coll = None
        root = coll if coll is not None else catalog
        yield from root.get_items(recursive=True)

    def _keep(self, item: pystac.Item, aoi: AOI, t0: pd.Timestamp, t1: pd.Timestamp) -> bool:
        import shapely
        from shapely.geometry import shape

        if item.collection_id and item.collection_id != self.collection:
            return False
        t = _item_time(item)
        if not (t0 <= t <= t1):
            return False
        cc = item.properties.get("eo:cloud_cover")
        if cc is not None and float(cc) > self.settings.ingest_max_cloud_cover:
            return False
        if item.geometry is None:
            return False
        return bool(shapely.intersects(shape(item.geometry), aoi.geometry_wgs84))

    # ------------------------------------------------------------------ fetch

    def fetch(
        self, aoi: AOI, start: dt.date, end: dt.date, *, progress: ProgressCallback | None = None
    ) -> xr.Dataset:
        items = self.find_items(aoi, start, end)
        report(progress, "catalogue", 1, 1)
        if not items:
            raise EmptyCatalogueError(
                f"STAC {self.url} (collection {self.collection!r}): no item over the AOI "
                f"between {start} and {end}"
            )
        LOGGER.info("stac: %d item(s) over the AOI", len(items))
        mapping = asset_mapping(items)
        n_items = len(items)
        refl = np.empty((n_items, len(BANDS), aoi.height, aoi.width), dtype=np.float32)
        scl = np.empty((n_items, aoi.height, aoi.width), dtype=np.uint8)
        decisions = []
        report(progress, "download", 0, n_items)
        for c0 in range(0, n_items, self.load_chunk):  # bounded memory: DN of a few items at a time
            chunk = items[c0 : c0 + self.load_chunk]
            dn, scl[c0 : c0 + len(chunk)] = self._load(chunk, mapping, aoi)
            for j, item in enumerate(chunk):
                d = offset_from_metadata(item.properties, _item_time(item))
                d = check_offset(
                    d,
                    dn[j, BANDS.index("B04")],
                    scl[c0 + j],
                    scene=f"STAC item {item.id}",
                    enabled=self.settings.ingest_offset_check,
                )
                decisions.append(d)
                refl[c0 + j] = harmonise(dn[j], d)
            del dn
            report(progress, "download", c0 + len(chunk), n_items)
        groups = _solar_day_groups(items, aoi)
        n = len(groups)
        out_r = np.full((n, len(BANDS), aoi.height, aoi.width), np.nan, dtype=np.float32)
        out_s = np.zeros((n, aoi.height, aoi.width), dtype=np.uint8)
        times, platforms, ids = [], [], []
        for g, members in enumerate(groups):
            for i in members:  # best first: only fill where still empty
                empty = out_s[g] == 0
                take = empty & (scl[i] != 0)
                out_r[g][:, take] = refl[i][:, take]
                out_s[g][take] = scl[i][take]
            times.append(min(_item_time(items[i]) for i in members))
            platforms.append(platform_code(items[members[0]].properties.get("platform")))
            ids.append(",".join(items[i].id for i in members))
        return finalize_cube(
            out_r,
            out_s,
            times,
            aoi,
            platforms=platforms,
            attrs={
                "stac_url": self.url,
                "stac_collection": self.collection,
                "scene_ids": ids,
                "boa_offsets": [
                    ",".join(f"{decisions[i].offset:g}" for i in members) for members in groups
                ],
                "boa_offsets_corrected": [
                    items[i].id for i, d in enumerate(decisions) if d.corrected
                ],
            },
            source=self.name,
        )

    def _load(
        self,
        items: list[pystac.Item],
        mapping: dict[str, str],
        aoi: AOI,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(DN float32 (item, band, y, x) with NaN = no data, SCL uint8 (item, y, x))."""
        import odc.stac
        from odc.geo.geobox import GeoBox

        geobox = GeoBox((aoi.height, aoi.width), aoi.transform, f"EPSG:{aoi.epsg}")
        keys = [mapping[b] for b in (*BANDS, "SCL")]
        scl_key = mapping["SCL"]
        stac_cfg = {"*": {"assets": {"*": {"data_type": "uint16", "nodata": 0}}}}

        # odc-stac's reader threads enter warnings.catch_warnings() concurrently, which is not
        # thread-safe and can leave a global "ignore" filter behind: restore the filters after.
        try:
            with warnings.catch_warnings():
                ds = odc.stac.load(
                    items,
                    bands=keys,
                    geobox=geobox,
                    groupby=lambda _item, _parsed, idx: idx,
                    resampling={"*": "bilinear", scl_key: "nearest"},
                    dtype="float32",
                    stac_cfg=stac_cfg,
                    pool=4,
                )
        except Exception as e:
            raise UpstreamError(
                f"reading STAC assets failed ({type(e).__name__}): {str(e)[:500]}"
            ) from e
        if ds.sizes.get("time") != len(items):
            raise SourceConfigError(
                f"odc-stac returned {ds.sizes.get('time')} slices for {len(items)} items"
            )
        dn = np.stack([np.asarray(ds[mapping[b]].values, dtype=np.float32) for b in BANDS], axis=1)
        dn[dn == 0] = np.nan
        s = np.asarray(ds[scl_key].values, dtype=np.float32)
        scl = np.where(np.isfinite(s), s, 0).astype(np.uint8)
        return dn, scl


def _item_time(item: pystac.Item) -> pd.Timestamp:
    t = item.datetime or item.common_metadata.start_datetime
    ts = pd.Timestamp(t)
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo else ts


def _solar_day_groups(items: list[pystac.Item], aoi: AOI) -> list[list[int]]:
    """Indices of ``items`` grouped by local solar day, each group best (cloud, id) first."""
    lon = float(aoi.geometry_wgs84.centroid.x)
    shift = pd.Timedelta(hours=lon / 15.0)
    groups: dict[dt.date, list[int]] = {}
    for i, it in enumerate(items):
        groups.setdefault((_item_time(it) + shift).date(), []).append(i)
    out = []
    for day in sorted(groups):
        members = groups[day]
        members.sort(
            key=lambda i: (float(items[i].properties.get("eo:cloud_cover", 0.0)), items[i].id)
        )
        out.append(members)
    return out
