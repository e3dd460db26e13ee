"""Cloud-Optimized GeoTIFFs with rio-cogeo: overviews, colour table, class names, validation."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import rasterio
from affine import Affine
from rasterio.io import MemoryFile
from rio_cogeo.cogeo import cog_translate, cog_validate
from rio_cogeo.profiles import cog_profiles

from agrostress.cube import (
    CLASS_NAMES,
    NODATA,
    NOT_WHEAT,
    OUTCOME_CODES,
    TOO_EARLY,
    UNCERTAIN,
    UNCERTAIN_CODE,
)

CLASS_COLOURS: dict[str, str] = {
    "healthy": "#2e8b3a",
    "nitrogen_deficiency": "#e8c547",
    "yellow_rust": "#c2410c",
    UNCERTAIN: "#8e7cc3",
    TOO_EARLY: "#9ab8d8",
    NOT_WHEAT: "#4b5563",
}
"""Map colours: green healthy, straw-yellow nitrogen deficiency, rust-orange yellow rust,
muted violet uncertain, pale blue too early to tell, slate grey not wheat."""
NODATA_COLOUR = "#bdbdbd"


def map_codes(names: Sequence[str] = CLASS_NAMES) -> dict[int, str]:
    """Code → outcome of the class map: the stress classes, then the abstentions
    (:data:`~agrostress.cube.OUTCOME_CODES`: "uncertain", "too_early", "not_wheat")."""
    if len(names) > UNCERTAIN_CODE:
        raise ValueError(f"at most {UNCERTAIN_CODE} stress classes fit before the uncertain code")
    return {**dict(enumerate(names)), **OUTCOME_CODES}


def hex_rgba(colour: str, alpha: int = 255) -> tuple[int, int, int, int]:
    c = colour.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16), alpha


def class_colormap(names: Sequence[str] = CLASS_NAMES, nodata: int = NODATA) -> dict[int, tuple]:
    """GDAL colour table: one entry per outcome code, nodata transparent."""
    cmap = {k: hex_rgba(CLASS_COLOURS.get(n, "#7f7f7f")) for k, n in map_codes(names).items()}
    cmap[nodata] = (0, 0, 0, 0)
    return cmap


def cog_layout(height: int, width: int) -> tuple[int, int]:
    """(block size, overview levels): blocks ≤ 512 px, at least one overview level — none for
    a raster one pixel high or wide, which cannot be decimated (GDAL would write an invalid
    1:1 "overview")."""
    side = min(height, width)
    block = 512
    while block > 16 and block > side // 2:
        block //= 2
    if side < 2:
        return block, 0
    levels = 0
    while max(height, width) / 2**levels > block:
        levels += 1
    return block, max(1, levels)


def translate_to_cog(
    src: Any,
    path: str | Path,
    *,
    block: int,
    levels: int,
    resampling: str,
    float_data: bool,
    nodata: float | int | None = None,
    colormap: dict[int, tuple] | None = None,
    in_memory: bool = True,
) -> Path:
    """The one COG recipe (single maps and region mosaics): DEFLATE, ``block``-sized tiles,
    ``levels`` internal overviews resampled with ``resampling``, the floating-point predictor
    for float data (horizontal differencing otherwise), band tags forwarded."""
    profile = dict(cog_profiles.get("deflate"))
    profile.update(blockxsize=block, blockysize=block, predictor=3 if float_data else 2)
    extra: dict[str, Any] = {"nodata": nodata} if nodata is not None else {}
    cog_translate(
        src, str(path), profile, overview_level=levels, overview_resampling=resampling,
        forward_band_tags=True, colormap=colormap, in_memory=in_memory, quiet=True,
        use_cog_driver=False, **extra,
    )
    return Path(path)


def write_cog(
    path: str | Path,
    data: np.ndarray,
    *,
    crs: Any,
    transform: Affine,
    nodata: float | int | None,
    band_names: Sequence[str],
    colormap: dict[int, tuple] | None = None,
    tags: dict[str, str] | None = None,
    band_tags: Sequence[dict[str, str]] | None = None,
    resampling: str = "nearest",
) -> Path:
    """Write ``data`` (bands, y, x) as a validated COG (DEFLATE, internal overviews)."""
    path = Path(path)
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    count, height, width = data.shape
    block, levels = cog_layout(height, width)
    src_profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": count,
        "dtype": data.dtype.name,
        "crs": crs,
        "transform": transform,
        "nodata": nodata,
    }
    with MemoryFile() as mem:
        with mem.open(**src_profile) as dst:
            dst.write(data)
            for b, name in enumerate(band_names, start=1):
                dst.set_band_description(b, name)
            if tags:
                dst.update_tags(**tags)
            for b, bt in enumerate(band_tags or [], start=1):
                dst.update_tags(b, **bt)
            if colormap is not None:
                dst.write_colormap(1, colormap)
        with mem.open() as src, contextlib.redirect_stderr(io.StringIO()):
            translate_to_cog(src, path, block=block, levels=levels, resampling=resampling,
                             float_data=data.dtype.kind == "f", nodata=nodata,
                             colormap=colormap, in_memory=True)
    valid, errors, _ = cog_validate(str(path), quiet=True)
    if not valid:  # pragma: no cover - rio-cogeo produced an invalid file
        raise RuntimeError(f"{path} is not a valid COG: {errors}")
    return path


def validate_cog(path: str | Path) -> tuple[bool, list[str], list[str]]:
    """rio-cogeo's validation: (valid, errors, warnings)."""
    return cog_validate(str(path), quiet=True)


def write_class_sidecars(tif: str | Path, names: Sequence[str] = CLASS_NAMES,
                         nodata: int = NODATA) -> list[Path]:
    """``<tif>.aux.xml`` (GDAL category names) and ``<stem>.qml`` (QGIS paletted style).

    QGIS picks the ``.qml`` up automatically and shows the class names in its legend.
    """
    tif = Path(tif)
    codes = map_codes(names)
    cats = "".join(f"<Category>{escape(codes.get(k, ''))}</Category>"
                   for k in range(max(codes) + 1))
    aux = tif.with_name(tif.name + ".aux.xml")
    aux.write_text(
        "<PAMDataset>\n  <PAMRasterBand band=\"1\">\n"
        f"    <CategoryNames>{cats}</CategoryNames>\n"
        "  </PAMRasterBand>\n</PAMDataset>\n"
    )
    entries = "\n".join(
        f'        <paletteEntry value="{k}" color="{CLASS_COLOURS.get(n, "#7f7f7f")}" '
        f'alpha="255" label="{escape(n)}"/>'
        for k, n in codes.items()
    )
    qml = tif.with_suffix(".qml")
    qml.write_text(
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        '<qgis version="3.28" styleCategories="AllStyleCategories">\n'
        "  <pipe>\n"
        '    <rasterrenderer type="paletted" band="1" opacity="1" alphaBand="-1" '
        'nodataColor="">\n'
        "      <colorPalette>\n"
        f"{entries}\n"
        "      </colorPalette>\n"
        "    </rasterrenderer>\n"
        "  </pipe>\n"
        "</qgis>\n"
    )
    return [aux, qml]


def read_band_names(path: str | Path) -> list[str]:
    """Band descriptions of a GeoTIFF (handy for tests and users)."""
    with rasterio.open(path) as src:
        return [d or "" for d in src.descriptions]
