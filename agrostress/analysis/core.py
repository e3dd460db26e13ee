"""The core path: :func:`analyse` classifies every pixel of a cube tile by tile, summarises
per field and optionally explains."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from agrostress.analysis.checks import check_compatible
from agrostress.analysis.crops import CropSelection
from agrostress.analysis.explanations import explain_candidates
from agrostress.analysis.fields import (
    grid_transform,
    pixel_area_m2,
    prepare_fields,
    rasterise_fields,
    read_fields,
)
from agrostress.analysis.not_wheat import NotWheatDetector
from agrostress.analysis.references import scene_reference
from agrostress.analysis.result import FORMAT, AnalysisResult
from agrostress.analysis.sampling import Candidates, candidate_inputs, lowest_per_group
from agrostress.analysis.summaries import field_summaries, plain_value, scene_totals
from agrostress.analysis.timeline import TIMELINE_PIXELS, field_timelines
from agrostress.analysis.trajectories import field_trajectories
from agrostress.cube import NODATA, NOT_WHEAT_CODE, cube_crs, validate
from agrostress.decision import (
    DecisionPolicy,
    abstentions,
    apply_priors,
    training_prior,
)
from agrostress.explain import (
    ExplainConfig,
    check_method,
)
from agrostress.preprocess import FeatureSpec, feature_stack
from agrostress.preprocess.grid import day_of_year
from agrostress.preprocess.mask import scl_valid
from agrostress.preprocess.reference import Reference, position_priority
from agrostress.preprocess.season import cut_season

MIN_VALID_SHARE = 0.25
"""Fields with a smaller share of valid pixels get no call (too little data)."""
TRAJECTORY_FEATURES: tuple[str, ...] = ("NDVI", "PSRI", "LCC")




def wheat_pixels(fields: Any | None, crops: CropSelection | None, wheat_parcels: Any | None,
                 crs: Any, shape: tuple[int, int], transform: Any) -> np.ndarray | None:
    """Boolean (y, x): inside a winter-wheat parcel — the ``fields`` whose crop ``crops``
    selects and/or the ``wheat_parcels`` — or None when neither is given (every pixel is
    judged as wheat)."""
    if crops is None and wheat_parcels is None:
        return None
    parts = []
    if crops is not None:
        if fields is None:
            raise ValueError("a crop attribute needs field polygons (--fields) that carry it")
        parts.append(fields[crops.is_wheat(fields)])
    if wheat_parcels is not None:
        parts.append(read_fields(wheat_parcels).to_crs(crs) if len(wheat_parcels) else None)
    mask = np.zeros(shape, dtype=bool)
    for part in parts:
        if part is not None and len(part):
            mask |= rasterise_fields(part, shape, transform) > 0
    return mask


def _feature_indices(wanted: Sequence[str], have: Sequence[str]) -> list[int] | None:
    """Positions of ``wanted`` among ``have`` (the model's features, reused), or None when
    some are missing (the detector's features are then computed on their own)."""
    have = list(have)
    return [have.index(w) for w in wanted] if set(wanted) <= set(have) else None


def tile_halo(model: Any) -> int:
    """Pixels a tile must borrow from its neighbours for exact results: the model's spatial
    context plus the cloud mask's dilation (the one rule for the core path and the batch)."""
    policy = model.mask_policy
    return int(model.context) + (int(policy.dilation) if policy.grown else 0)


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
    as_of: str | dt.date | None = None,
    timeline: bool = True,
    crops: CropSelection | None = None,
    wheat_parcels: Any | None = None,
    not_wheat: NotWheatDetector | None = None,
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
      default when None); pixels and fields the model does not know are called "uncertain";
    * ``as_of``: the date the call is made on (default: the last acquisition). Later
      acquisitions are dropped before preprocessing and, for in-season models, the grid steps
      after the last acquisition are masked; while the season is incomplete
      (``decision.season_complete_doy``) calls that are not confident yet are "too_early";
    * ``timeline``: each field's call on every past date (:mod:`.timeline`) — in-season
      models with fields only;
    * ``crops``: which of ``fields`` are winter wheat (their crop attribute,
      :class:`~agrostress.analysis.crops.CropSelection`); ``wheat_parcels``: the winter-wheat
      parcels themselves (polygons, any CRS; e.g. a batch tile's). With either, every pixel
      outside the wheat parcels is "not wheat" (map code 5: no stress class, no reference, no
      explanation) and so is every field that is not wheat;
    * ``not_wheat``: without a parcel layer, the built-in detector
      (:class:`~agrostress.analysis.not_wheat.NotWheatDetector`) marks the valid pixels that
      are not winter wheat from their season so far (ignored when ``crops`` or
      ``wheat_parcels`` say where the wheat is).

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
    cube, season = cut_season(cube, model.grid, as_of)
    if model.in_season:
        model.set_horizon(season.observed_steps)
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
    doys_obs, year = day_of_year(cube["time"].values, season.year)
    context = int(model.context)
    pad = tile_halo(model) if halo is None else int(halo)

    # fields: polygons (rasterised) win over the cube's field_id layer
    gdf = None
    if fields is not None:
        gdf = prepare_fields(fields, crs)
        findex = rasterise_fields(gdf, (ny, nx), transform)
        if not findex.any():
            raise ValueError("no field polygon overlaps the cube")
        field_ids: list[Any] = [plain_value(v) for v in gdf["field_id"]]
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
    wheat_px = wheat_pixels(gdf, crops, wheat_parcels, crs, (ny, nx), transform)
    detector = not_wheat if wheat_px is None else None
    if detector is not None and detector.model.card.grid != model.card.grid:
        raise ValueError(f"the not-wheat detector's grid {detector.model.card.grid} differs "
                         f"from the model's {model.card.grid}")
    det_idx = None if detector is None else _feature_indices(detector.features, model.spec.names)
    other = np.zeros((ny, nx), dtype=bool) if detector is not None else None
    decision = decision or DecisionPolicy()
    trained = training_prior(model.card.calibration, names)

    tiles = [(y0, min(ny, y0 + tile), x0, min(nx, x0 + tile))
             for y0 in range(0, ny, tile) for x0 in range(0, nx, tile)]
    keep_vars = [v for v in ("reflectance", "scl") if v in cube]
    clock = dict.fromkeys(("read", "preprocess", "reference", "model", "not_wheat",
                           "trajectories", "timeline", "explain"), 0.0)
    reuse: dict = {}  # tile → (loaded tile, features) from the reference pass
    if model.uses_reference:
        tic = time.perf_counter()
        if reference is None:
            groups = findex if wheat_px is None else np.where(
                wheat_px, findex if findex is not None else 1, 0).astype(np.int32)
            reference = scene_reference(cube[keep_vars], model, tiles, pad, groups, year, seed,
                                        keep=reuse, horizon_doy=season.horizon_doy)
        model.set_reference(reference.series)
        clock["reference"] = time.perf_counter() - tic
    else:
        reference = None

    # outputs, filled tile by tile
    proba = np.full((n_cls, ny, nx), np.nan, dtype=np.float32)
    bad = np.ones((ny, nx), dtype=bool)
    abstain = np.zeros((ny, nx), dtype=np.uint8)  # 0 or the uncertain / too-early code
    horizon_doy = season.horizon_doy if model.in_season else None
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
    cand = Candidates(k=max(0, int(explain_pixels))) if explain else None
    timed = (Candidates(k=TIMELINE_PIXELS)
             if timeline and model.in_season and findex is not None else None)
    total_steps = len(tiles) + (1 if explain else 0)
    for done, (y0, y1, x0, x1) in enumerate(tiles, start=1):
        ya, yb, xa, xb = max(0, y0 - pad), min(ny, y1 + pad), max(0, x0 - pad), min(nx, x1 + pad)
        tic = time.perf_counter()
        sub, fs = reuse.pop((y0, y1, x0, x1), (None, None))
        if sub is None:
            sub = cube[keep_vars].isel(y=slice(ya, yb), x=slice(xa, xb)).load()
        clock["read"] += time.perf_counter() - tic
        inner = (slice(y0 - ya, y1 - ya), slice(x0 - xa, x1 - xa))
        refl = np.asarray(sub["reflectance"].transpose("time", "band", "y", "x").values)
        scl = np.asarray(sub["scl"].transpose("time", "y", "x").values)
        ok = scl_valid(scl, policy) & np.isfinite(refl).all(axis=1)
        if ok.any():  # else: every pixel of the tile stays nodata
            tic = time.perf_counter()
            if fs is None:
                fs = feature_stack(sub, model.spec, model.grid, policy, regularisation=reg,
                                   year=year)
            f = np.asarray(fs["features"].transpose("doy", "feature", "y", "x").values)
            tile_bad = np.asarray(fs["insufficient_data"].values)
            clock["preprocess"] += time.perf_counter() - tic
            tic = time.perf_counter()
            p, ood = model.predict_image(f)
            p = apply_priors(p.astype(np.float32), names, decision.priors, trained)
            clock["model"] += time.perf_counter() - tic
            p_in, bad_in = p[(slice(None), *inner)], tile_bad[inner]
            bad[y0:y1, x0:x1] = bad_in
            if wheat_px is not None:  # not wheat: no class, no reference, no explanation
                bad_in = bad_in | ~wheat_px[y0:y1, x0:x1]
            if detector is not None:
                tic = time.perf_counter()
                fd = f[:, det_idx] if det_idx is not None else np.asarray(
                    feature_stack(sub, detector.model.spec, model.grid, policy,
                                  regularisation=reg, year=year)["features"]
                    .transpose("doy", "feature", "y", "x").values)
                nw = detector.not_wheat(fd[(slice(None), slice(None), *inner)],
                                        season.observed_steps) & ~bad_in
                other[y0:y1, x0:x1] = nw
                bad_in = bad_in | nw
                clock["not_wheat"] += time.perf_counter() - tic
            p_in[:, bad_in] = np.nan
            proba[:, y0:y1, x0:x1] = p_in
            ood_in = None if ood is None else ood[inner]
            abstain[y0:y1, x0:x1] = np.where(
                bad_in, 0, abstentions(p_in, ood_in, decision, horizon_doy))
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
            for pool, group in ((cand, (fidx - 1) if fidx is not None else cls_in),
                                (timed, None if fidx is None else fidx - 1)):
                if pool is None or not pool.k or group is None:
                    continue
                rr, cc = np.nonzero(~bad_in & (group >= 0))
                if rr.size:
                    gy, gx = rr + y0, cc + x0
                    pr = position_priority(gy, gx, nx, seed)
                    grp = group[rr, cc].astype(np.int64)
                    # pre-trim within the tile before cutting out features
                    sel = lowest_per_group(pr, grp, pool.k)
                    xs = candidate_inputs(f, rr[sel] + inner[0].start, cc[sel] + inner[1].start,
                                          context, (ya, yb, xa, xb), (ny, nx))
                    pool.add(pr[sel], grp[sel], gy[sel], gx[sel], xs)
        if progress:
            progress(done, total_steps)

    classes = np.where(bad, NODATA, np.where(abstain > 0, abstain,
                                             np.nan_to_num(proba).argmax(axis=0)))
    if wheat_px is not None:
        classes = np.where(wheat_px, classes, NOT_WHEAT_CODE)
    if other is not None:
        classes = np.where(other, NOT_WHEAT_CODE, classes)
    classes = classes.astype(np.uint8)
    called = np.isfinite(proba).all(axis=0)
    confidence = np.where(called, np.nanmax(np.where(called, proba, 0), axis=0), np.nan)
    confidence = confidence.astype(np.float32)
    area_m2, approx = pixel_area_m2(cube, crs)

    labels = np.asarray(cube["label"].transpose("y", "x").values) if "label" in cube else None
    field_rows = field_summaries(
        findex, field_ids, proba, classes, labels, names, area_m2, min_valid_share, gdf,
        decision, in_season=horizon_doy is not None and decision.in_season(horizon_doy),
    )
    totals = scene_totals(classes, names, area_m2, approx)

    dates = [(pd.Timestamp(year=year, month=1, day=1) + pd.Timedelta(days=int(d) - 1))
             .strftime("%Y-%m-%d") for d in model.grid.doys]
    timelines = None
    if timed is not None:
        tic = time.perf_counter()
        timelines = field_timelines(model, timed, field_ids, field_rows, names, dates, season,
                                    decision, trained)
        clock["timeline"] = time.perf_counter() - tic
    trajectories = None
    if traj_spec is not None:
        trajectories = field_trajectories(
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
        found = explain_candidates(
            model, cand, cfg, field_ids, field_rows, proba, classes, names, dates, n_fields,
            shift,
        )
        px = found.pixels
        attributions = dataclasses.replace(
            found,
            evidence=da(found.evidence, ("y", "x"), "evidence"),
            evidence_rust_vs_n=da(found.evidence_rust_vs_n, ("y", "x"), "evidence_rust_vs_n"),
            pixels=dataclasses.replace(px, x=coords["x"][px.cols], y=coords["y"][px.rows]))
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
        timelines=timelines,
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
            "wheat_mask": {
                "source": "crop attribute" if crops is not None else "wheat parcels",
                **(crops.describe() if crops is not None else {}),
                "wheat_pixels": int(wheat_px.sum())} if wheat_px is not None else {
                "source": "detector",
                "model": f"{detector.model.card.name} {detector.model.card.version}",
                "threshold": detector.threshold,
                "not_wheat_pixels": int(other.sum())} if detector is not None else None,
            "field_source": "polygons" if gdf is not None else
            ("cube field_id" if findex is not None else None),
            "seconds": round(time.perf_counter() - t_start, 3),
            "source": cube.attrs.get("source"),
            "reference": reference.describe() if reference is not None else None,
            "decision": decision.describe(trained),
            "season": {**season.describe(), "masked": model.in_season},
        },
    )
    return result
