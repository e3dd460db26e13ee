"""The core path every interface uses (demo, CLI predict, REST API, Dask batch):

    cube ──features──▶ model ──▶ probabilities ──▶ class map, field summary (+ explanations)

INTERFACE CONTRACT (issue 6; the API and batch code against it):

    analyse(cube, model, *, fields=None, explain=False, method="ig", tile=256,
            progress=None) -> AnalysisResult
        cube:   a valid cube (xarray.Dataset, numpy- or dask-backed) — see agrostress.cube
        model:  agrostress.models.LoadedModel (agrostress.models.load(DIR))
        fields: optional GeoDataFrame of field polygons (any CRS; must carry a `field_id`
                column or one is assigned 1..n) — else the cube's `field_id` layer if present
        explain: compute captum attributions (per pixel, aggregated per field and class)
        method: "ig" (Integrated Gradients, default) | "saliency" | "gradientshap" | "occlusion"
        tile:   spatial tile size in pixels; the cube is streamed tile by tile (with a halo of
                model.context pixels), so cubes larger than memory work; results are
                identical to a single pass.
        progress: optional callable(done_tiles: int, total_tiles: int)

    AnalysisResult (dataclass):
        classes:        xarray.DataArray uint8 (y, x): 0 healthy, 1 nitrogen_deficiency,
                        2 yellow_rust, 255 nodata / insufficient data; CRS in spatial_ref
        probabilities:  xarray.DataArray float32 (class, y, x), NaN where nodata
        confidence:     xarray.DataArray float32 (y, x), max probability, NaN where nodata
        insufficient:   xarray.DataArray bool (y, x)
        fields:         list[dict] per field: field_id, call (class name or None),
                        confidence, class_fractions {name: share of valid pixels},
                        mean_probabilities {name: p}, valid_pixel_share, area_ha
                        (+ true_label when the cube has labels)
        totals:         dict: scene hectares per class, nodata hectares, total hectares
        attributions:   optional dict (only with explain=True): per field and class the
                        (time step × feature) heatmap, dates, feature names, method,
                        completeness check result; and a (y, x) float32 evidence map
        model_card:     the model's card dict (name, version, …)

    write_outputs(result, out_dir) -> dict[str, Path]
        Writes atomically (temporary name, then rename) into out_dir:
        stress_map.tif (uint8 COG, colour table, class names, nodata 255),
        probabilities.tif (float32 COG: one band per class + confidence), stress_map.png,
        summary.json; with attributions: attributions.json, attributions.png,
        evidence.tif. Returns {artefact name: path}.

Additions beyond the contract (keyword-only, defaults keep the contract's behaviour): see
:func:`analyse` and :class:`AnalysisResult`; ``docs/outputs.md`` describes every artefact.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from affine import Affine

from agrostress.cube import NODATA, UNCERTAIN_CODE, cube_crs, pixel_size, validate
from agrostress.decision import (
    UNCERTAIN,
    DecisionPolicy,
    apply_priors,
    training_prior,
    uncertain_pixels,
)
from agrostress.explain import (
    BASELINE,
    ExplainConfig,
    attribute,
    baseline_probabilities,
    check_method,
    completeness,
    evidence_maps,
    explained_module,
    group_means,
    heatmap_summary,
    to_series,
)
from agrostress.preprocess import FeatureSpec, feature_stack
from agrostress.preprocess.grid import check_overlap, day_of_year
from agrostress.preprocess.mask import scl_valid
from agrostress.preprocess.reference import Reference, ReferenceSampler, position_priority

MIN_VALID_SHARE = 0.25
"""Fields with a smaller share of valid pixels get no call (too little data)."""
TRAJECTORY_FEATURES: tuple[str, ...] = ("NDVI", "PSRI", "LCC")
FORMAT = "agrostress-analysis/1"


@dataclass
class AnalysisResult:
    """Everything :func:`analyse` found; :func:`write_outputs` turns it into files."""

    classes: xr.DataArray
    probabilities: xr.DataArray
    confidence: xr.DataArray
    insufficient: xr.DataArray
    fields: list[dict[str, Any]]
    totals: dict[str, Any]
    attributions: dict[str, Any] | None
    model_card: dict[str, Any]
    # additions
    field_index: xr.DataArray | None = None
    """int32 (y, x): 1-based position in ``fields`` of each pixel's field, 0 outside."""
    trajectories: dict[str, Any] | None = None
    """Per-field and reference mean series of ``trajectory_features`` (see :func:`analyse`)."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Scene facts: crs (WKT), transform, shape, dates, year, grid, tiles, seconds, …"""

    timings: dict[str, float] = field(default_factory=dict)
    """Seconds spent: read, preprocess, model, trajectories, explain, total."""

    @property
    def class_names(self) -> list[str]:
        return [str(c) for c in self.probabilities["class"].values]

    @property
    def crs_wkt(self) -> str:
        """The CRS (WKT) stored with the maps (survives cropping)."""
        ref = self.classes.coords.get("spatial_ref")
        wkt = None if ref is None else (ref.attrs.get("crs_wkt") or ref.attrs.get("spatial_ref"))
        return str(wkt or self.meta["crs"])

    @property
    def transform(self) -> Affine:
        """The maps' affine transform, from their pixel-centre coordinates (survives cropping)."""
        x, y = self.classes["x"].values, self.classes["y"].values
        a, _, c, _, e, f = self.meta["transform"][:6]
        dx = float(x[1] - x[0]) if x.size > 1 else a
        dy = float(y[1] - y[0]) if y.size > 1 else e
        return Affine(dx, 0.0, float(x[0]) - dx / 2, 0.0, dy, float(y[0]) - dy / 2)


# --------------------------------------------------------------------------- checks


def check_compatible(cube: xr.Dataset, model: Any) -> None:
    """Raise ``ValueError`` when ``model`` cannot run on ``cube`` (bands, season, shapes)."""
    spec = model.spec
    have = [str(b) for b in cube["band"].values]
    missing = [b for b in spec.bands_needed() if b not in have]
    if missing:
        raise ValueError(
            f"model/cube mismatch: the cube lacks band(s) {missing} needed by the model's "
            f"features {spec}"
        )
    if len(spec) != int(model.card.n_features):
        raise ValueError(
            f"model/cube mismatch: the model expects {model.card.n_features} features but its "
            f"spec {spec} gives {len(spec)}"
        )
    if len(model.grid) != int(model.card.n_steps):
        raise ValueError(
            f"model/cube mismatch: the model expects {model.card.n_steps} time steps but its grid "
            f"{model.grid} gives {len(model.grid)}"
        )
    doys, year = day_of_year(cube["time"].values)
    try:
        check_overlap(doys, model.grid, model.regularisation.edge_days)
    except ValueError as e:
        raise ValueError(f"model/cube mismatch: {e}") from None


# --------------------------------------------------------------------------- fields


def prepare_fields(fields: Any, crs: Any) -> Any:
    """Validate a field GeoDataFrame, reproject it to ``crs`` and give every row a field_id.

    Rows sharing a ``field_id`` are merged; null/empty geometries are dropped.
    """
    import geopandas as gpd

    if not isinstance(fields, gpd.GeoDataFrame):
        raise ValueError(f"fields must be a GeoDataFrame, got {type(fields).__name__}")
    gdf = fields[fields.geometry.notna() & ~fields.geometry.is_empty].copy()
    if gdf.empty:
        raise ValueError("the field file holds no polygons")
    kinds = set(gdf.geom_type)
    if not kinds <= {"Polygon", "MultiPolygon"}:
        raise ValueError(f"fields must be polygons, got {sorted(kinds)}")
    if gdf.crs is None:
        raise ValueError("the field polygons have no CRS; save them with one (e.g. GeoJSON)")
    gdf = gdf.to_crs(crs)
    if "field_id" not in gdf.columns:
        gdf["field_id"] = np.arange(1, len(gdf) + 1)
    if gdf["field_id"].isna().any():
        raise ValueError("some fields have an empty field_id")
    if gdf["field_id"].duplicated().any():
        keep = [c for c in ("class_name", "label") if c in gdf.columns]
        gdf = gdf.dissolve(by="field_id", as_index=False, aggfunc="first")[
            ["field_id", *keep, "geometry"]
        ]
    return gdf.reset_index(drop=True)


def grid_transform(cube: xr.Dataset) -> Affine:
    """The affine transform of the cube's pixel grid (from its x/y pixel-centre coordinates)."""
    dx, dy = pixel_size(cube)
    x0, y0 = float(cube["x"].values[0]), float(cube["y"].values[0])
    return Affine(dx, 0.0, x0 - dx / 2, 0.0, dy, y0 - dy / 2)


def rasterise_fields(gdf: Any, shape: tuple[int, int], transform: Affine) -> np.ndarray:
    """int32 raster of 1-based row positions of ``gdf`` (0 outside; later rows win overlaps)."""
    from rasterio.features import rasterize

    shapes = [(geom, i + 1) for i, geom in enumerate(gdf.geometry)]
    return rasterize(shapes, out_shape=shape, transform=transform, fill=0, dtype="int32")


def _pixel_area_m2(cube: xr.Dataset, crs: Any) -> tuple[float, bool]:
    """(area of one pixel in m², approximate?) — geographic CRSs use the scene's mid latitude."""
    dx, dy = pixel_size(cube)
    if crs.is_geographic:
        lat = math.radians(float(np.mean(cube["y"].values)))
        return abs(dx * 111_320.0 * math.cos(lat) * dy * 110_574.0), True
    factor = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
    return abs(dx * dy) * factor * factor, False


# --------------------------------------------------------------------------- sampling


def _lowest_per_group(prio: np.ndarray, group: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` lowest-priority items of every group, ordered by (group, prio)."""
    order = np.lexsort((prio, group))
    g = group[order]
    rank = np.arange(g.size) - np.searchsorted(g, g, side="left")
    return order[rank < k]


@dataclass
class _Candidates:
    """The ``k`` lowest-priority valid pixels per group, merged tile by tile."""

    k: int
    prio: np.ndarray = field(default_factory=lambda: np.zeros(0))
    group: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    cols: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    x: np.ndarray | None = None

    def add(self, prio: np.ndarray, group: np.ndarray, rows: np.ndarray, cols: np.ndarray,
            x: np.ndarray) -> None:
        if prio.size == 0:
            return
        cat = lambda a, b: b if a is None or a.size == 0 else np.concatenate([a, b])  # noqa: E731
        P, G = cat(self.prio, prio), cat(self.group, group)
        R, C, X = cat(self.rows, rows), cat(self.cols, cols), cat(self.x, x)
        keep = _lowest_per_group(P, G, self.k)
        self.prio, self.group, self.rows, self.cols, self.x = P[keep], G[keep], R[keep], C[keep], X[keep]


# --------------------------------------------------------------------------- analyse


def analyse(
    cube: xr.Dataset,
    model: Any,
    *,
    fields: Any | None = None,
    explain: bool = False,
    method: str = "ig",
    tile: int = 256,
    progress: Callable[[int, int], None] | None = None,
    explain_pixels: int = 32,
    explain_config: ExplainConfig | None = None,
    seed: int = 0,
    trajectory_features: Sequence[str] | None = TRAJECTORY_FEATURES,
    min_valid_share: float = MIN_VALID_SHARE,
    halo: int | None = None,
    decision: DecisionPolicy | None = None,
    reference: Reference | None = None,
) -> AnalysisResult:
    """Classify every pixel of ``cube`` with ``model``, summarise per field, optionally explain.

    Additions to the contract:

    * ``explain_pixels``: pixels explained per field (per predicted class when there are no
      fields), chosen by a seeded hash of their position among valid pixels (tile-independent);
    * ``explain_config``: :class:`agrostress.explain.ExplainConfig` (IG steps, batch, float64,
      tolerance, …; its ``method`` is overridden by ``method``), ``seed`` its seed;
    * ``trajectory_features``: features whose per-field mean series are kept for the trajectory
      plot (None/empty: skip);
    * ``min_valid_share``: fields with a smaller share of valid pixels get ``call=None``;
    * ``halo``: override the tile halo (default ``model.context`` + the cloud-mask dilation);
    * ``decision``: priors and abstention (:class:`agrostress.decision.DecisionPolicy`, the
      default when None); pixels and fields the model does not know are called "uncertain".

    Models that judge against a reference get the scene's (the winter-cereal-like pixels of
    the fields, or of the whole cube without fields; :mod:`agrostress.preprocess.reference`),
    or their built-in one when the request holds too little wheat; ``meta["reference"]``
    says which. ``reference`` overrides it (e.g. one built from a buffer around a lone field
    with :func:`request_reference`).

    Pixel models give results identical to a single pass for any ``tile``; spatial models
    (``model.context > 0``) are exact when their receptive field fits in ``halo``.
    """
    t_start = time.perf_counter()
    cube = validate(cube)
    check_compatible(cube, model)
    method = check_method(method)
    if explain and not model.is_torch:
        raise ValueError(
            f"explanations need a torch model; {model.card.architecture!r} is not differentiable"
        )
    if tile < 8:
        raise ValueError(f"tile must be ≥ 8 pixels, got {tile}")
    crs = cube_crs(cube)
    ny, nx = cube.sizes["y"], cube.sizes["x"]
    transform = grid_transform(cube)
    names = [str(c) for c in model.card.class_names]
    n_cls = len(names)
    policy, reg = model.mask_policy, model.regularisation
    doys_obs, year = day_of_year(cube["time"].values)
    context = int(model.context)
    pad = context + (policy.dilation if policy.grown else 0) if halo is None else int(halo)

    # fields: polygons (rasterised) win over the cube's field_id layer
    gdf = None
    if fields is not None:
        gdf = prepare_fields(fields, crs)
        findex = rasterise_fields(gdf, (ny, nx), transform)
        if not findex.any():
            raise ValueError("no field polygon overlaps the cube")
        field_ids: list[Any] = [_plain(v) for v in gdf["field_id"]]
    elif "field_id" in cube:
        raw = np.asarray(cube["field_id"].transpose("y", "x").values)
        ids = np.unique(raw[raw > 0])
        findex = np.zeros(raw.shape, dtype=np.int32)
        inside = raw > 0
        findex[inside] = np.searchsorted(ids, raw[inside]) + 1
        field_ids = [int(v) for v in ids]
    else:
        findex = None
        field_ids = []
    n_fields = len(field_ids)
    decision = decision or DecisionPolicy()
    trained = training_prior(model.card.calibration, names)

    tiles = [(y0, min(ny, y0 + tile), x0, min(nx, x0 + tile))
             for y0 in range(0, ny, tile) for x0 in range(0, nx, tile)]
    keep_vars = [v for v in ("reflectance", "scl") if v in cube]
    clock = dict.fromkeys(("read", "preprocess", "reference", "model", "trajectories",
                           "explain"), 0.0)
    if model.uses_reference:
        tic = time.perf_counter()
        if reference is None:
            reference = _scene_reference(cube[keep_vars], model, tiles, pad, findex, year, seed)
        model.set_reference(reference.series)
        clock["reference"] = time.perf_counter() - tic
    else:
        reference = None

    # outputs, filled tile by tile
    proba = np.full((n_cls, ny, nx), np.nan, dtype=np.float32)
    bad = np.ones((ny, nx), dtype=bool)
    unsure = np.zeros((ny, nx), dtype=bool)
    traj_spec = FeatureSpec.parse(list(trajectory_features)) if trajectory_features else None
    G = len(model.grid)
    if traj_spec is not None:
        K = len(traj_spec)
        t_sum = np.zeros((n_fields + 1, G, K))
        t_sq = np.zeros((n_fields + 1, G, K))
        t_cnt = np.zeros(n_fields + 1)
        c_sum = np.zeros((n_cls, G, K))
        c_sq = np.zeros((n_cls, G, K))
        c_cnt = np.zeros(n_cls)
    cand = _Candidates(k=max(0, int(explain_pixels))) if explain else None
    total_steps = len(tiles) + (1 if explain else 0)
    for done, (y0, y1, x0, x1) in enumerate(tiles, start=1):
        ya, yb, xa, xb = max(0, y0 - pad), min(ny, y1 + pad), max(0, x0 - pad), min(nx, x1 + pad)
        tic = time.perf_counter()
        sub = cube[keep_vars].isel(y=slice(ya, yb), x=slice(xa, xb)).load()
        clock["read"] += time.perf_counter() - tic
        inner = (slice(y0 - ya, y1 - ya), slice(x0 - xa, x1 - xa))
        refl = np.asarray(sub["reflectance"].transpose("time", "band", "y", "x").values)
        scl = np.asarray(sub["scl"].transpose("time", "y", "x").values)
        ok = scl_valid(scl, policy) & np.isfinite(refl).all(axis=1)
        if ok.any():  # else: every pixel of the tile stays nodata
            tic = time.perf_counter()
            fs = feature_stack(sub, model.spec, model.grid, policy, regularisation=reg, year=year)
            f = np.asarray(fs["features"].transpose("doy", "feature", "y", "x").values)
            tile_bad = np.asarray(fs["insufficient_data"].values)
            clock["preprocess"] += time.perf_counter() - tic
            tic = time.perf_counter()
            p = apply_priors(model.predict_proba_image(f).astype(np.float32), names,
                             decision.priors, trained)
            ood = model.ood_score_image(f[(slice(None), slice(None), *inner)])
            clock["model"] += time.perf_counter() - tic
            p_in, bad_in = p[(slice(None), *inner)], tile_bad[inner]
            p_in[:, bad_in] = np.nan
            proba[:, y0:y1, x0:x1] = p_in
            bad[y0:y1, x0:x1] = bad_in
            unsure[y0:y1, x0:x1] = uncertain_pixels(p_in, ood, decision) & ~bad_in
            fidx = findex[y0:y1, x0:x1] if findex is not None else None
            cls_in = np.where(bad_in, -1, np.nan_to_num(p_in).argmax(axis=0))
            tic = time.perf_counter()
            if traj_spec is not None:
                tf = feature_stack(sub, traj_spec, model.grid, policy, regularisation=reg,
                                   year=year)
                tv = np.asarray(tf["features"].transpose("y", "x", "doy", "feature").values)[inner]
                good = ~bad_in & np.isfinite(tv).all(axis=(-1, -2))
                v = tv[good].astype(np.float64)
                if fidx is not None:
                    g = fidx[good]
                    np.add.at(t_sum, g, v)
                    np.add.at(t_sq, g, v * v)
                    t_cnt += np.bincount(g, minlength=n_fields + 1)
                cg = cls_in[good]
                np.add.at(c_sum, cg, v)
                np.add.at(c_sq, cg, v * v)
                c_cnt += np.bincount(cg, minlength=n_cls)
            clock["trajectories"] += time.perf_counter() - tic
            if cand is not None and cand.k:
                group = (fidx - 1) if fidx is not None else cls_in
                rr, cc = np.nonzero(~bad_in & (group >= 0))
                if rr.size:
                    gy, gx = rr + y0, cc + x0
                    pr = position_priority(gy, gx, nx, seed)
                    grp = group[rr, cc].astype(np.int64)
                    # pre-trim within the tile before cutting out features
                    sel = _lowest_per_group(pr, grp, cand.k)
                    xs = _inputs(f, rr[sel] + inner[0].start, cc[sel] + inner[1].start, context,
                                 (ya, yb, xa, xb), (ny, nx))
                    cand.add(pr[sel], grp[sel], gy[sel], gx[sel], xs)
        if progress:
            progress(done, total_steps)

    classes = np.where(bad, NODATA, np.where(unsure, UNCERTAIN_CODE,
                                             np.nan_to_num(proba).argmax(axis=0)))
    classes = classes.astype(np.uint8)
    confidence = np.where(bad, np.nan, np.nanmax(np.where(bad, 0, proba), axis=0))
    confidence = confidence.astype(np.float32)
    area_m2, approx = _pixel_area_m2(cube, crs)

    labels = np.asarray(cube["label"].transpose("y", "x").values) if "label" in cube else None
    field_rows = field_summaries(
        findex, field_ids, proba, classes, labels, names, area_m2, min_valid_share, gdf,
        decision,
    )
    totals = _totals(classes, names, area_m2, approx)

    dates = [(pd.Timestamp(year=year, month=1, day=1) + pd.Timedelta(days=int(d) - 1))
             .strftime("%Y-%m-%d") for d in model.grid.doys]
    trajectories = None
    if traj_spec is not None:
        trajectories = _trajectories(
            traj_spec, model.grid.doys, dates, field_ids, field_rows, t_sum, t_sq, t_cnt,
            c_sum, c_sq, c_cnt, names,
        )

    coords = {"y": cube["y"].values, "x": cube["x"].values}
    ref = cube["spatial_ref"]

    def da(values: np.ndarray, dims: tuple[str, ...], name: str, **extra: Any) -> xr.DataArray:
        out = xr.DataArray(values, dims=dims, coords={**coords, **extra}, name=name)
        return out.assign_coords(spatial_ref=ref.variable)

    attributions = None
    if explain:
        tic = time.perf_counter()
        cfg = explain_config or ExplainConfig()
        cfg = ExplainConfig(**{**cfg.__dict__, "method": method, "seed": seed})
        shift = None if not decision.priors else np.log(
            np.array([decision.priors[n] / trained[n] for n in names]))
        attributions = _explain(
            model, cand, cfg, field_ids, field_rows, proba, classes, names, dates, n_fields,
            shift,
        )
        for key in ("evidence", "evidence_rust_vs_n"):
            attributions[key] = da(attributions[key], ("y", "x"), key)
        px = attributions["pixels"]
        px["x"] = coords["x"][px["cols"]]
        px["y"] = coords["y"][px["rows"]]
        clock["explain"] = time.perf_counter() - tic
        if progress:
            progress(total_steps, total_steps)

    result = AnalysisResult(
        classes=da(classes, ("y", "x"), "classes"),
        probabilities=da(proba, ("class", "y", "x"), "probabilities", **{"class": names}),
        confidence=da(confidence, ("y", "x"), "confidence"),
        insufficient=da(bad, ("y", "x"), "insufficient"),
        fields=field_rows,
        totals=totals,
        attributions=attributions,
        model_card=model.card.to_dict(),
        field_index=da(findex, ("y", "x"), "field_index") if findex is not None else None,
        trajectories=trajectories,
        timings={**{k: round(v, 4) for k, v in clock.items()},
                 "total": round(time.perf_counter() - t_start, 4)},
        meta={
            "format": FORMAT,
            "crs": crs.to_wkt(),
            "crs_name": crs.name,
            "epsg": crs.to_epsg(),
            "geographic": bool(crs.is_geographic),
            "transform": list(transform)[:6],
            "shape": [int(ny), int(nx)],
            "year": int(year),
            "grid": str(model.grid),
            "grid_dates": dates,
            "observations": int(cube.sizes["time"]),
            "first_date": pd.Timestamp(cube["time"].values[0]).strftime("%Y-%m-%d"),
            "last_date": pd.Timestamp(cube["time"].values[-1]).strftime("%Y-%m-%d"),
            "observed_doy_range": [float(doys_obs.min()), float(doys_obs.max())],
            "tile": int(tile),
            "halo": int(pad),
            "tiles": len(tiles),
            "field_source": "polygons" if gdf is not None else
            ("cube field_id" if findex is not None else None),
            "seconds": round(time.perf_counter() - t_start, 3),
            "source": cube.attrs.get("source"),
            "reference": reference.describe() if reference is not None else None,
            "decision": decision.describe(trained),
        },
    )
    return result


def request_reference(cube: xr.Dataset, model: Any, *, tile: int = 256,
                      seed: int = 0) -> Reference:
    """The wheat reference of every winter-cereal-like pixel of ``cube`` (no field limits) —
    for a request whose own fields are too few, from a cube fetched with a buffer around them."""
    cube = validate(cube)
    ny, nx = cube.sizes["y"], cube.sizes["x"]
    tiles = [(y0, min(ny, y0 + tile), x0, min(nx, x0 + tile))
             for y0 in range(0, ny, tile) for x0 in range(0, nx, tile)]
    _, year = day_of_year(cube["time"].values)
    keep = [v for v in ("reflectance", "scl") if v in cube]
    return _scene_reference(cube[keep], model, tiles, 0, None, year, seed)


def _scene_reference(cube: xr.Dataset, model: Any, tiles: list[tuple[int, int, int, int]],
                     pad: int, findex: np.ndarray | None, year: int, seed: int) -> Reference:
    """The reference of the request: winter-cereal-like pixels of its fields (of the whole
    cube without fields), sampled tile by tile; the model's built-in one when too few."""
    ny, nx = cube.sizes["y"], cube.sizes["x"]
    sampler = ReferenceSampler(model.spec.names, model.grid.doys, nx, seed)
    for y0, y1, x0, x1 in tiles:
        ya, yb, xa, xb = max(0, y0 - pad), min(ny, y1 + pad), max(0, x0 - pad), min(nx, x1 + pad)
        sub = cube.isel(y=slice(ya, yb), x=slice(xa, xb)).load()
        scl = np.asarray(sub["scl"].transpose("time", "y", "x").values)
        refl = np.asarray(sub["reflectance"].transpose("time", "band", "y", "x").values)
        if not (scl_valid(scl, model.mask_policy) & np.isfinite(refl).all(axis=1)).any():
            continue
        fs = feature_stack(sub, model.spec, model.grid, model.mask_policy,
                           regularisation=model.regularisation, year=year)
        inner = (slice(y0 - ya, y1 - ya), slice(x0 - xa, x1 - xa))
        f = np.asarray(fs["features"].transpose("doy", "feature", "y", "x").values)
        f = f[(slice(None), slice(None), *inner)]
        usable = ~np.asarray(fs["insufficient_data"].values)[inner]
        group = None
        if findex is not None:
            group = findex[y0:y1, x0:x1]
            usable &= group > 0
        sampler.add(f, usable, group, (y0, x0))
    return sampler.reference(model.builtin_reference)


def pretty_name(name: str) -> str:
    """``nitrogen_deficiency`` → ``nitrogen deficiency``."""
    return str(name).replace("_", " ")


def _plain(v: Any) -> Any:
    """numpy scalar → Python scalar (field ids may be ints or strings)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _inputs(f: np.ndarray, rows: np.ndarray, cols: np.ndarray, context: int,
            window: tuple[int, int, int, int], shape: tuple[int, int]) -> np.ndarray:
    """Raw model inputs of tile pixels: (n, T, F) series or (n, T, F, P, P) patches.

    Patches are reflect-padded only at the scene border, like a single pass over the scene.
    """
    if not context:
        return np.ascontiguousarray(f[:, :, rows, cols].transpose(2, 0, 1))
    ya, yb, xa, xb = window
    ny, nx = shape
    top, left = max(0, context - ya), max(0, context - xa)
    bottom, right = max(0, context - (ny - yb)), max(0, context - (nx - xb))
    fp = np.pad(f, ((0, 0), (0, 0), (top, bottom), (left, right)), mode="reflect")
    p = 2 * context + 1
    dy, dx = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    r = rows + top - context
    c = cols + left - context
    out = fp[:, :, r[:, None, None] + dy, c[:, None, None] + dx]  # (T, F, n, P, P)
    return np.ascontiguousarray(out.transpose(2, 0, 1, 3, 4))


def field_summaries(
    findex: np.ndarray | None,
    field_ids: list[Any],
    proba: np.ndarray,
    classes: np.ndarray,
    labels: np.ndarray | None,
    names: list[str],
    area_m2: float,
    min_valid_share: float,
    gdf: Any,
    decision: DecisionPolicy,
) -> list[dict[str, Any]]:
    """Per field: the call (a class, "uncertain" or None for too little data), its
    confidence, class fractions and mean probabilities."""
    if findex is None or not field_ids:
        return []
    n = len(field_ids)
    flat = findex.ravel()
    valid = classes.ravel() != NODATA
    npx = np.bincount(flat, minlength=n + 1)
    nval = np.bincount(flat[valid], minlength=n + 1)
    cls_counts = np.stack(
        [np.bincount(flat[valid & (classes.ravel() == k)], minlength=n + 1) for k in range(len(names))]
    )
    n_unsure = np.bincount(flat[classes.ravel() == UNCERTAIN_CODE], minlength=n + 1)
    psum = np.stack(
        [np.bincount(flat[valid], weights=proba[k].ravel()[valid], minlength=n + 1)
         for k in range(len(names))]
    )
    truth = None
    if labels is not None:
        lab = labels.ravel()
        known = lab >= 0
        truth = np.stack(
            [np.bincount(flat[known & (lab == k)], minlength=n + 1) for k in range(len(names))]
        )
    poly_ha = None
    if gdf is not None:
        try:
            poly_ha = (gdf.geometry.area / 1e4).to_numpy() if not gdf.crs.is_geographic else None
        except Exception:  # pragma: no cover - unusual CRS units
            poly_ha = None
    rows: list[dict[str, Any]] = []
    for i, fid in enumerate(field_ids, start=1):
        nv = int(nval[i])
        share = nv / npx[i] if npx[i] else 0.0
        mean_p = psum[:, i] / nv if nv else np.full(len(names), np.nan)
        best = int(np.argmax(mean_p)) if nv else None
        called = best is not None and share >= min_valid_share
        unsure_share = float(n_unsure[i] / nv) if nv else 0.0
        unsure = called and (float(mean_p[best]) < decision.min_confidence
                             or unsure_share > decision.field_max_uncertain_share)
        row: dict[str, Any] = {
            "field_id": fid,
            "call": (UNCERTAIN if unsure else names[best]) if called else None,
            "confidence": float(mean_p[best]) if called else None,
            "class_fractions": {
                **{nm: (float(cls_counts[k, i] / nv) if nv else None)
                   for k, nm in enumerate(names)},
                UNCERTAIN: unsure_share if nv else None,
            },
            "mean_probabilities": {
                nm: (float(mean_p[k]) if nv else None) for k, nm in enumerate(names)
            },
            "valid_pixel_share": float(share),
            "area_ha": float(npx[i] * area_m2 / 1e4),
            "pixels": int(npx[i]),
            "valid_pixels": nv,
            "leading_class": names[best] if best is not None else None,
        }
        if truth is not None and truth[:, i].sum() > 0:
            row["true_label"] = names[int(np.argmax(truth[:, i]))]
        elif gdf is not None and "class_name" in gdf.columns:
            v = gdf["class_name"].iloc[i - 1]
            if isinstance(v, str) and v in names:
                row["true_label"] = v
        if poly_ha is not None:
            row["polygon_area_ha"] = float(poly_ha[i - 1])
        rows.append(row)
    return rows


def _totals(classes: np.ndarray, names: list[str], area_m2: float, approx: bool) -> dict[str, Any]:
    counts = {nm: int((classes == k).sum()) for k, nm in enumerate(names)}
    counts[UNCERTAIN] = int((classes == UNCERTAIN_CODE).sum())
    counts["nodata"] = int((classes == NODATA).sum())
    counts["total"] = int(classes.size)
    ha = {k: v * area_m2 / 1e4 for k, v in counts.items()}
    return {
        "hectares": ha,
        "pixels": counts,
        "pixel_area_m2": area_m2,
        "area_approximate": approx,
        **{f"{k}_ha": v for k, v in ha.items()},
    }


def _trajectories(spec: FeatureSpec, doys: np.ndarray, dates: list[str], field_ids: list[Any],
                  field_rows: list[dict[str, Any]], t_sum: np.ndarray, t_sq: np.ndarray,
                  t_cnt: np.ndarray,
                  c_sum: np.ndarray, c_sq: np.ndarray, c_cnt: np.ndarray,
                  names: list[str]) -> dict[str, Any]:
    feats = list(spec.names)

    def series(s: np.ndarray, n: float) -> dict[str, list[float]] | None:
        if n <= 0:
            return None
        m = s / n
        return {f: [float(v) for v in m[:, j]] for j, f in enumerate(feats)}

    def spread(s: np.ndarray, sq: np.ndarray, n: float) -> dict[str, list[float]]:
        m = s / n
        sd = np.sqrt(np.maximum(sq / n - m * m, 0))
        return {f: [float(v) for v in sd[:, j]] for j, f in enumerate(feats)}

    fields_out = {}
    for i, fid in enumerate(field_ids, start=1):
        fields_out[str(fid)] = series(t_sum[i], t_cnt[i])
    pooled: dict[str, Any] = {}
    for k, nm in enumerate(names):
        members = [i for i, r in enumerate(field_rows, start=1) if r["call"] == nm]
        n = float(t_cnt[members].sum()) if members else 0.0
        if n > 0:
            s_, q_ = t_sum[members].sum(axis=0), t_sq[members].sum(axis=0)
            pooled[nm] = {"source": f"{len(members)} field(s) called {pretty_name(nm)}",
                          "pixels": int(n), "mean": series(s_, n), "std": spread(s_, q_, n)}
        elif c_cnt[k] > 0:
            pooled[nm] = {"source": f"pixels predicted {pretty_name(nm)}", "pixels": int(c_cnt[k]),
                          "mean": series(c_sum[k], c_cnt[k]),
                          "std": spread(c_sum[k], c_sq[k], c_cnt[k])}
    return {
        "features": feats,
        "doys": [int(d) for d in doys],
        "dates": dates,
        "fields": fields_out,
        "references": pooled,
        "reference_class": names[0],
    }


REFINE_ROUNDS = 2  # IG completeness: re-integrate missed pixels with 4×, then 16× the steps


def _explain(model: Any, cand: _Candidates | None, cfg: ExplainConfig, field_ids: list[Any],
             field_rows: list[dict[str, Any]], proba: np.ndarray, classes: np.ndarray,
             names: list[str], dates: list[str], n_fields: int,
             class_shift: np.ndarray | None) -> dict[str, Any]:
    f = explained_module(model.module, float64=cfg.float64, temperature=model.temperature,
                         class_shift=class_shift)
    doys = [int(d) for d in model.grid.doys]
    feats = list(model.spec.names)
    T, F = len(doys), len(feats)
    shape = (T, F) if not model.context else (T, F, 2 * model.context + 1, 2 * model.context + 1)
    base_p = baseline_probabilities(f, shape, cfg)
    leading = np.where(classes == NODATA, NODATA, np.nan_to_num(proba).argmax(axis=0))
    evidence, contrast = evidence_maps(proba, leading, base_p)  # uncertain: its leading class
    if cand is None or cand.x is None or cand.group.size == 0:
        x = np.zeros((0, *shape), np.float32)
        groups = np.zeros(0, np.int64)
        rows = cols = np.zeros(0, np.int64)
    else:
        x = model.normalise(np.moveaxis(cand.x, 2, -1))
        x = np.moveaxis(x, -1, 2) if model.context else x
        groups, rows, cols = cand.group, cand.rows, cand.cols
    if n_fields:  # explain toward the field's call (its leading class when too little data)
        lead = [names.index(r["leading_class"]) if r["leading_class"] else 0 for r in field_rows]
        target = np.asarray(lead, dtype=np.int64)[groups] if groups.size else groups
    else:
        target = groups.copy()
    attr = attribute(model.module, x, target, cfg, prepared=f)
    comp: dict[str, Any] = {"method": cfg.method, "tolerance": cfg.tolerance}
    if cfg.method == "ig" and len(x):
        delta = completeness(f, x, target, attr, cfg)
        refined = np.flatnonzero(np.abs(delta) > cfg.tolerance)
        todo, steps = refined, cfg.ig_steps
        for _ in range(REFINE_ROUNDS):  # a steep path: integrate again with 4× the steps
            if not todo.size:
                break
            steps *= 4
            fine = ExplainConfig(**{**cfg.__dict__, "ig_steps": steps})
            attr[todo] = attribute(model.module, x[todo], target[todo], fine, prepared=f)
            delta[todo] = completeness(f, x[todo], target[todo], attr[todo], fine)
            todo = todo[np.abs(delta[todo]) > cfg.tolerance]
        comp.update(
            max_abs_delta=float(np.abs(delta).max()),
            mean_abs_delta=float(np.abs(delta).mean()),
            pixels=int(len(delta)),
            refined_pixels=int(refined.size),
            passed=bool(np.abs(delta).max() <= cfg.tolerance),
            statement=(
                "per pixel, the IG attributions sum to p_target(x) − p_target(baseline) within "
                f"{cfg.tolerance} (probability units); {cfg.ig_steps} Gauss–Legendre steps, "
                f"4× more (up to {cfg.ig_steps * 4 ** REFINE_ROUNDS}) for pixels that missed it"
            ),
        )
    else:
        comp.update(passed=None, statement="completeness applies to Integrated Gradients only")

    series = to_series(attr)
    out_fields: list[dict[str, Any]] = []
    if n_fields:
        means, counts = group_means(series, groups, n_fields)
        for i, r in enumerate(field_rows):
            if counts[i] == 0:
                continue
            out_fields.append({
                "field_id": r["field_id"],
                "target": r["leading_class"],
                "call": r["call"],
                "true_label": r.get("true_label"),
                "pixels": int(counts[i]),
                "heatmap": means[i],
                "summary": heatmap_summary(means[i], doys, feats),
            })
    cmeans, ccounts = group_means(series, target, len(names))
    n_called = [sum(1 for f in out_fields if f["target"] == nm) for nm in names]
    out_classes = {
        nm: {"pixels": int(ccounts[k]), "fields": n_called[k], "heatmap": cmeans[k],
             "summary": heatmap_summary(cmeans[k], doys, feats)}
        for k, nm in enumerate(names) if ccounts[k] > 0
    }
    return {
        "method": cfg.method,
        "baseline": BASELINE,
        "output": "probability of the target class (calibrated, under the priors)",
        "target": "the field's call (leading class)" if n_fields else "the pixel's predicted class",
        "doys": doys,
        "dates": dates,
        "features": feats,
        "fields": out_fields,
        "classes": out_classes,
        "completeness": comp,
        "baseline_probabilities": {nm: float(base_p[k]) for k, nm in enumerate(names)},
        "config": {k: v for k, v in cfg.__dict__.items()},
        "pixels": {
            "rows": rows, "cols": cols, "group": groups, "target": target,
            "field_id": [field_ids[g] for g in groups] if n_fields else None,
            "attributions": attr,
        },
        "evidence": evidence,
        "evidence_rust_vs_n": contrast,
        "spatial_model": bool(model.context),
    }


# --------------------------------------------------------------------------- outputs


def write_outputs(result: AnalysisResult, out_dir: str | Path, *,
                  overwrite: bool = True, plots: bool = True) -> dict[str, Path]:
    """Write every artefact of ``result`` into ``out_dir`` atomically; {name: path}.

    All files are produced in a temporary sibling folder that replaces ``out_dir`` at the end,
    so a failure leaves nothing behind. An existing ``out_dir`` is replaced only when it is
    empty or an earlier AgroStress output folder (``overwrite``); any other folder is refused.
    ``plots=False`` skips the optional PNGs (trajectories, histogram, per-field heatmaps).
    """
    from agrostress.outputs import write_all

    return write_all(result, Path(out_dir), overwrite=overwrite, plots=plots)


# --------------------------------------------------------------------------- the demo

DEMO_SEED = 5
"""Seed of the demo scene: independent of the shipped model's training (1000–1009) and test
(2000–2003) seeds; see ``data/README.md`` for how it was chosen."""
SAMPLE_SCENE = Path(__file__).resolve().parent.parent / "data" / "sample_scene.zarr"
"""The embedded demo scene (``data/README.md`` has the command that regenerates it)."""
SAMPLE_MASKED_SCL: tuple[int, ...] = (0, 1, 3, 8, 9, 10)
"""SCL classes whose reflectance the sample scene stores as NaN (no data, defective, cloud
shadow, clouds, cirrus): invalid under any sensible mask policy, and NaN compresses well."""


@dataclass
class DemoReport:
    """What :func:`run_demo` did: the analysis, the files and the time each stage took."""

    result: AnalysisResult
    paths: dict[str, Path]
    timings: dict[str, float]
    scene: str
    rows: list[dict[str, Any]]
    """Per field: field_id, true_label, call, confidence, valid_pixel_share, correct."""

    @property
    def field_accuracy(self) -> float | None:
        known = [r for r in self.rows if r.get("true_label") and r.get("call")]
        return sum(r["correct"] for r in known) / len(known) if known else None


def demo_scene(*, seed: int = DEMO_SEED, size: int = 64, fields: int = 9,
               difficulty: str = "benchmark") -> xr.Dataset:
    """The demo's region: a simulated, labelled scene with fields of all three classes."""
    import torch

    from agrostress.simulate import SimulationConfig, simulate_scene

    if fields < 3:
        raise ValueError("the demo needs at least 3 fields (one per class)")
    threads = torch.get_num_threads()  # the simulator's OpenMP kernels reset it
    cube, _ = simulate_scene(
        SimulationConfig(fields=fields, size=size, seed=seed, difficulty=difficulty)
    )
    torch.set_num_threads(threads)
    return cube


def write_sample_scene(path: str | Path, *, seed: int = DEMO_SEED, size: int = 64,
                       fields: int = 9, difficulty: str = "benchmark",
                       keepbits: int = 9) -> Path:
    """Simulate the demo scene and write it compactly (≈ 2 MB for 64 px) as a Zarr cube.

    Compared with :func:`demo_scene`: the simulator's truth layers (true_lai, true_cab,
    rust_severity) are dropped, reflectance under clouds/shadows/no data
    (:data:`SAMPLE_MASKED_SCL`) is NaN, and the other reflectances keep ``keepbits`` mantissa
    bits (``numcodecs.BitRound``: relative error ≤ 2^-(keepbits+1), 0.1 % for 9 bits, far below
    the simulated sensor noise). The cube stays contract-valid float32.
    """
    import numcodecs

    from agrostress.simulate import SimulationConfig, simulate_scene, write_scene

    cube, gdf = simulate_scene(
        SimulationConfig(fields=fields, size=size, seed=seed, difficulty=difficulty)
    )
    cube = cube.drop_vars([v for v in ("true_lai", "true_cab", "rust_severity") if v in cube])
    masked = np.isin(np.asarray(cube["scl"].values), SAMPLE_MASKED_SCL)
    cube["reflectance"] = cube["reflectance"].where(~masked[:, None]).astype(np.float32)
    cube["reflectance"].encoding = {
        "filters": (numcodecs.BitRound(keepbits=keepbits),),
        "compressors": (numcodecs.Blosc(cname="zstd", clevel=9,
                                        shuffle=numcodecs.Blosc.BITSHUFFLE),),
    }
    cube.attrs["sample_scene"] = (
        f"agrostress.analysis.write_sample_scene(seed={seed}, size={size}, fields={fields}, "
        f"difficulty={difficulty!r}, keepbits={keepbits})"
    )
    return write_scene(cube, gdf, path)


def run_demo(
    out_dir: str | Path,
    model: Any,
    *,
    cube: xr.Dataset | None = None,
    seed: int = DEMO_SEED,
    size: int = 64,
    fields: int = 9,
    difficulty: str = "benchmark",
    explain: bool = True,
    method: str = "ig",
    explain_pixels: int = 24,
    explain_config: ExplainConfig | None = None,
    overwrite: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
    decision: DecisionPolicy | None = None,
) -> DemoReport:
    """The whole product on one small region, offline: scene → analysis → every artefact.

    ``cube`` defaults to :func:`demo_scene` (simulated deterministically from ``seed``);
    ``progress(stage, done, total)`` reports the stages ``scene``, ``analyse``, ``write``.
    ``decision`` defaults to the training prior: the demo scene holds fields of every class in
    equal numbers, unlike a real region (for which the product's default priors are meant).
    """
    from agrostress.outputs import check_out_dir

    out_dir = Path(out_dir)
    check_out_dir(out_dir, overwrite=overwrite)  # fail before the work, not after
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if progress:
        progress("scene", 0, 1)
    if cube is None:
        cube = demo_scene(seed=seed, size=size, fields=fields, difficulty=difficulty)
        scene = (f"simulated {size}×{size} px ({size * 10 / 1000:g} km square), {fields} fields, "
                 f"seed {seed}, {difficulty} difficulty")
    else:
        scene = f"cube {cube.sizes['y']}×{cube.sizes['x']} px, {cube.sizes['time']} dates"
    timings["scene"] = time.perf_counter() - t0
    if progress:
        progress("scene", 1, 1)
    t = time.perf_counter()
    result = analyse(
        cube, model, explain=explain, method=method, explain_pixels=explain_pixels,
        explain_config=explain_config, seed=0,
        progress=(lambda d, n: progress("analyse", d, n)) if progress else None,
        decision=decision or DecisionPolicy(priors=None),
    )
    timings["analyse"] = time.perf_counter() - t
    t = time.perf_counter()
    if progress:
        progress("write", 0, 1)
    paths = write_outputs(result, out_dir, overwrite=overwrite)
    if progress:
        progress("write", 1, 1)
    timings["write"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    rows = [
        {
            "field_id": f["field_id"],
            "true_label": f.get("true_label"),
            "call": f["call"],
            "confidence": f["confidence"],
            "valid_pixel_share": f["valid_pixel_share"],
            "area_ha": f["area_ha"],
            "correct": bool(f.get("true_label") and f["call"] == f.get("true_label")),
        }
        for f in result.fields
    ]
    return DemoReport(result=result, paths=paths, timings=timings, scene=scene, rows=rows)
