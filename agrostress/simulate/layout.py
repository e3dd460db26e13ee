"""Scene layout: wheat fields of varied shapes and sizes separated by hedges, tracks and grass."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft
from rasterio import features
from rasterio.transform import Affine
from scipy import ndimage
from shapely import MultiPoint, Polygon, box
from shapely.ops import voronoi_diagram

from agrostress.simulate.landcover import GRASS, HEDGE, TRACK, WHEAT, draw_other_covers

OTHER_SHARE = 0.5  # non-wheat parcels per wheat field


@dataclass
class Layout:
    """Rasterised layout on the scene grid plus the wheat field polygons (CRS units)."""

    cover: np.ndarray  # (H, W) uint8 land-cover code
    field_id: np.ndarray  # (H, W) int32, 1..n for wheat fields, 0 elsewhere
    parcel: np.ndarray  # (H, W) int32 parcel index (wheat and other parcels), 0 = border
    parcel_cover: np.ndarray  # (n_parcels + 1,) land cover of each parcel index (0: border)
    polygons: list[Polygon]  # wheat field polygons, index i -> field_id i + 1


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Zero-mean, unit-variance, spatially correlated Gaussian noise.

    White noise convolved (periodically) with a Gaussian of ``sigma`` px, done in the Fourier
    domain so that the cost does not grow with ``sigma``.
    """
    white = rng.standard_normal(shape, dtype=np.float32)
    spectrum = ndimage.fourier_gaussian(scipy.fft.rfft2(white), sigma, n=shape[1])
    z = scipy.fft.irfft2(spectrum, s=shape).astype(float)
    return (z - z.mean()) / (z.std() + 1e-12)


def make_layout(
    rng: np.random.Generator,
    height: int,
    width: int,
    transform: Affine,
    n_fields: int,
) -> Layout:
    """Voronoi parcels (relaxed once), shrunk by a 10–25 m border of hedge, track or grass.

    Besides the wheat fields, ``OTHER_SHARE`` × as many parcels get another land cover
    (:data:`agrostress.simulate.landcover.OTHER_PARCELS`)."""
    n_other = max(3, round(OTHER_SHARE * n_fields))
    n_cells = n_fields + n_other
    x0, y0 = transform.c, transform.f
    res = transform.a
    scene = box(x0, y0 - height * res, x0 + width * res, y0)
    pts = np.column_stack(
        [rng.uniform(x0, x0 + width * res, n_cells), rng.uniform(y0 - height * res, y0, n_cells)]
    )
    cells = _voronoi_cells(pts, scene)
    # one Lloyd step: more regular parcels, still varied in size and shape
    pts = np.array([[c.centroid.x, c.centroid.y] for c in cells])
    cells = _voronoi_cells(pts, scene)
    order = rng.permutation(len(cells))
    shapes = []
    polygons: list[Polygon] = []
    kinds = np.zeros(len(cells) + 1, dtype=np.uint8)
    kinds[n_fields + 1 :] = draw_other_covers(rng, len(cells) - n_fields)
    for parcel_index, k in enumerate(order, start=1):
        border = rng.uniform(5.0, 12.5)  # half of a 10–25 m boundary strip
        poly = cells[k].buffer(-border, join_style="mitre")
        if poly.is_empty:
            poly = cells[k].buffer(-res / 2, join_style="mitre")
        if poly.geom_type == "MultiPolygon":
            poly = max(poly.geoms, key=lambda g: g.area)
        is_wheat = parcel_index <= n_fields
        if is_wheat:
            kinds[parcel_index] = WHEAT
            polygons.append(poly)
        shapes.append((poly, parcel_index))
    parcel = features.rasterize(
        shapes, out_shape=(height, width), transform=transform, fill=0, dtype="int32"
    )
    cover = kinds[parcel]
    border_kind = smooth_noise(rng, (height, width), sigma=6.0)
    strip = np.where(border_kind > 0.35, HEDGE, np.where(border_kind < -0.35, TRACK, GRASS))
    cover = np.where(parcel == 0, strip, cover).astype(np.uint8)
    field_id = np.where(parcel <= n_fields, parcel, 0).astype(np.int32)
    missing = [i + 1 for i in range(n_fields) if not np.any(field_id == i + 1)]
    if missing:
        raise ValueError(
            f"scene too small for {n_fields} fields: fields {missing} cover no pixel; "
            "use a larger --size or fewer --fields"
        )
    return Layout(cover=cover, field_id=field_id, parcel=parcel, parcel_cover=kinds, polygons=polygons)


def _voronoi_cells(points: np.ndarray, scene: Polygon) -> list[Polygon]:
    regions = voronoi_diagram(MultiPoint([tuple(p) for p in points]), envelope=scene.buffer(1e4))
    cells = [r.intersection(scene) for r in regions.geoms]
    return [c for c in cells if not c.is_empty and c.area > 0]
