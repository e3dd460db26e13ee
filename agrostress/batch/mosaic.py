"""Mosaics of tile COGs: a GDAL VRT (written by hand, no GDAL bindings needed) and a COG.

Per UTM zone and per raster product (``stress_map``, ``probabilities``, ``evidence`` …) the
VRT places every completed tile at its offset in the zone grid; pixels of missing tiles read
as nodata. The COG with internal overviews is translated from the VRT with rio-cogeo
(windowed, so mosaics larger than memory work). Both are written atomically.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np

from agrostress.atomic import atomic_path

_GDAL_TYPES = {
    "uint8": "Byte",
    "int8": "Int8",
    "uint16": "UInt16",
    "int16": "Int16",
    "uint32": "UInt32",
    "int32": "Int32",
    "float32": "Float32",
    "float64": "Float64",
}


@dataclass(frozen=True)
class Placement:
    """A tile raster and its pixel offset in the zone grid."""

    path: Path
    col_off: int
    row_off: int
    width: int
    height: int


def build_vrt(
    vrt_path: str | Path,
    placements: Sequence[Placement],
    *,
    width: int,
    height: int,
    transform: Any,
    crs_wkt: str,
    template: str | Path | None = None,
) -> Path:
    """Write a VRT mosaicking ``placements`` onto a ``width`` × ``height`` grid.

    Band count, data type, nodata, descriptions, colour table and metadata come from
    ``template`` (default: the first placement). Source paths are relative to the VRT.
    """
    import rasterio

    if not placements:
        raise ValueError("no tile to mosaic")
    vrt_path = Path(vrt_path)
    with rasterio.open(template or placements[0].path) as src:
        count, dtypes, nodata = src.count, src.dtypes, src.nodata
        descriptions = src.descriptions
        tags = src.tags()
        band_tags = [src.tags(b) for b in range(1, count + 1)]
        colorinterp = [ci.name for ci in src.colorinterp]
        try:
            colormap = src.colormap(1)
        except ValueError:
            colormap = None
        block = src.block_shapes[0]
    gt = transform
    lines = [
        f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">',
        f'  <SRS dataAxisToSRSAxisMapping="1,2">{escape(crs_wkt)}</SRS>',
        f"  <GeoTransform>{gt.c!r}, {gt.a!r}, {gt.b!r}, {gt.f!r}, {gt.d!r}, {gt.e!r}</GeoTransform>",
    ]
    lines += _metadata(tags, "  ")
    for b in range(1, count + 1):
        gdal_type = _GDAL_TYPES[np.dtype(dtypes[b - 1]).name]
        lines.append(f'  <VRTRasterBand dataType="{gdal_type}" band="{b}">')
        if descriptions[b - 1]:
            lines.append(f"    <Description>{escape(descriptions[b - 1])}</Description>")
        if nodata is not None:
            lines.append(f"    <NoDataValue>{_fmt_nodata(nodata)}</NoDataValue>")
        lines += _metadata(band_tags[b - 1], "    ")
        if b == 1 and colormap:
            lines.append("    <ColorInterp>Palette</ColorInterp>")
            lines.append("    <ColorTable>")
            for k in range(max(colormap) + 1):
                c = colormap.get(k, (0, 0, 0, 0))
                lines.append(f'      <Entry c1="{c[0]}" c2="{c[1]}" c3="{c[2]}" c4="{c[3]}"/>')
            lines.append("    </ColorTable>")
        elif colorinterp[b - 1] not in ("undefined", "gray"):
            lines.append(f"    <ColorInterp>{colorinterp[b - 1].capitalize()}</ColorInterp>")
        for p in placements:
            rel = Path(_relpath(p.path, vrt_path.parent)).as_posix()
            lines += [
                "    <SimpleSource>",
                f'      <SourceFilename relativeToVRT="1">{escape(rel)}</SourceFilename>',
                f"      <SourceBand>{b}</SourceBand>",
                f'      <SourceProperties RasterXSize="{p.width}" RasterYSize="{p.height}" '
                f'DataType="{gdal_type}" BlockXSize="{block[1]}" BlockYSize="{block[0]}"/>',
                f'      <SrcRect xOff="0" yOff="0" xSize="{p.width}" ySize="{p.height}"/>',
                f'      <DstRect xOff="{p.col_off}" yOff="{p.row_off}" xSize="{p.width}" '
                f'ySize="{p.height}"/>',
                "    </SimpleSource>",
            ]
        lines.append("  </VRTRasterBand>")
    lines.append("</VRTDataset>")
    with atomic_path(vrt_path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return vrt_path


def vrt_to_cog(
    vrt_path: str | Path,
    cog_path: str | Path,
    *,
    resampling: str = "nearest",
    blocksize: int = 512,
) -> Path:
    """Translate a VRT into a COG with internal overviews (atomically), by the single maps'
    recipe (:func:`agrostress.outputs.cog.translate_to_cog`)."""
    import rasterio

    from agrostress.outputs.cog import translate_to_cog

    cog_path = Path(cog_path)
    with rasterio.open(vrt_path) as src:
        float_data = np.issubdtype(np.dtype(src.dtypes[0]), np.floating)
        size = max(src.width, src.height)
    levels = max(0, math.ceil(math.log2(max(size, 1) / blocksize))) if size > blocksize else 0
    with atomic_path(cog_path) as tmp:
        translate_to_cog(str(vrt_path), tmp, block=blocksize, levels=levels,
                         resampling=resampling, float_data=float_data, in_memory=False)
    return cog_path


def overview_resampling(path: str | Path) -> str:
    """'mode' for class maps (integers), 'average' for continuous (float) rasters."""
    import rasterio

    with rasterio.open(path) as src:
        return "average" if np.issubdtype(np.dtype(src.dtypes[0]), np.floating) else "mode"


# --------------------------------------------------------------------------- internals


def _metadata(tags: dict[str, str], indent: str) -> list[str]:
    tags = {k: v for k, v in tags.items() if k not in ("AREA_OR_POINT",)}
    if not tags:
        return []
    out = [f"{indent}<Metadata>"]
    out += [f'{indent}  <MDI key="{escape(k)}">{escape(str(v))}</MDI>' for k, v in tags.items()]
    out.append(f"{indent}</Metadata>")
    return out


def _fmt_nodata(v: float) -> str:
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    return repr(int(v)) if float(v).is_integer() else repr(float(v))


def _relpath(path: Path, start: Path) -> str:
    import os

    return os.path.relpath(Path(path).resolve(), Path(start).resolve())
