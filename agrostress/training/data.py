"""Training data: labelled cubes → feature series (or patches) per pixel, with field keys."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from agrostress.cube import open_cube, validate
from agrostress.preprocess import (
    CloudMaskPolicy,
    FeatureSpec,
    Regularisation,
    TemporalGrid,
    feature_stack,
)
from agrostress.preprocess.season import cut_season
from agrostress.training.references import scene_reference_draws
from agrostress.training.season import (
    FULL_SEASON_SHARE,
    doy_date,
    draw_cut_doys,
    read_onsets,
    visible_labels,
)

#: share of training samples judged against the built-in reference (a field alone)
BUILTIN_SHARE = 0.1


@dataclass
class TrainingData:
    """Pixel samples from one or more labelled cubes."""

    x: np.ndarray  # (N, T, F) raw features, or (N, T, F, P, P) patches
    y: np.ndarray  # (N,) int64 class codes
    field_key: np.ndarray  # (N,) int64 unique per (scene, field_id)
    spec: FeatureSpec
    grid: TemporalGrid
    description: str
    data_hash: str
    excluded_insufficient: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    #: reference series (R, T, F) raw; the last one is the built-in reference
    references: np.ndarray | None = None
    ref_index: np.ndarray | None = None  # (N,) which reference each sample is judged against
    #: (N,) grid steps each sample has seen (its season cut); None: whole seasons
    horizon: np.ndarray | None = None

    @property
    def builtin_reference(self) -> np.ndarray | None:
        return None if self.references is None else self.references[-1]

    def subset(self, idx: np.ndarray) -> TrainingData:
        return TrainingData(self.x[idx], self.y[idx], self.field_key[idx], self.spec, self.grid,
                            self.description, self.data_hash, 0, dict(self.meta),
                            self.references,
                            None if self.ref_index is None else self.ref_index[idx],
                            None if self.horizon is None else self.horizon[idx])


def cube_features(
    cube: xr.Dataset | str | Path,
    spec: FeatureSpec | str,
    grid: TemporalGrid | str,
    policy: CloudMaskPolicy | None = None,
    regularisation: Regularisation | None = None,
) -> xr.Dataset:
    """Feature Dataset of a cube (path or Dataset), loaded in memory."""
    ds = open_cube(cube) if isinstance(cube, str | Path) else validate(cube)
    return feature_stack(ds.load(), spec, grid, policy, regularisation=regularisation)


def patches(feats: np.ndarray, rows: np.ndarray, cols: np.ndarray, context: int) -> np.ndarray:
    """(T, F, H, W) features → (N, T, F, P, P) patches centred on (rows, cols), reflect-padded."""
    p = 2 * context + 1
    padded = np.pad(feats, ((0, 0), (0, 0), (context, context), (context, context)), mode="reflect")
    dy, dx = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    out = padded[:, :, rows[:, None, None] + dy, cols[:, None, None] + dx]  # (T, F, N, P, P)
    return np.ascontiguousarray(out.transpose(2, 0, 1, 3, 4))


def load_training_data(
    cubes: list[xr.Dataset | str | Path],
    spec: FeatureSpec | str,
    grid: TemporalGrid | str,
    *,
    policy: CloudMaskPolicy | None = None,
    regularisation: Regularisation | None = None,
    context: int = 0,
    max_pixels_per_cube: int | None = None,
    seed: int = 0,
    progress: Any = None,
    reference_draws: int = 0,
    season_cuts: int = 0,
) -> TrainingData:
    """Labelled, sufficiently observed pixels of every cube (optionally subsampled per cube).

    ``reference_draws`` > 0: each cube also gets that many reference series
    (:func:`~agrostress.training.references.scene_reference_draws`) and each sample one of
    them; :data:`BUILTIN_SHARE` of the samples get the built-in reference (the median healthy
    series of all cubes), as a field alone in its request would.

    ``season_cuts`` > 0: each cube is also cut at that many random dates
    (:mod:`agrostress.training.season`; the cubes must be simulated stores with their
    ``fields.geojson``); every sample sees one version — the whole season for
    :data:`~agrostress.training.season.FULL_SEASON_SHARE` of them — with the labels visible
    by its cut, and ``horizon`` records the grid steps it has seen.
    """
    spec, grid = FeatureSpec.parse(spec), TemporalGrid.parse(grid)
    rng = np.random.default_rng(seed)
    xs, ys, keys, names, horizons = [], [], [], [], []
    refs: list[np.ndarray | None] = []
    ref_idx: list[np.ndarray] = []
    healthy_full: list[np.ndarray] = []
    digest = hashlib.sha256()
    skipped = 0
    for i, c in enumerate(cubes):
        ds = open_cube(c) if isinstance(c, str | Path) else c
        validate(ds, require_labels=True)
        if "field_id" not in ds:
            raise ValueError(f"training cube {i} has no field_id: the split is by field")
        ds = ds.load()
        label = np.asarray(ds["label"].transpose("y", "x").values)
        fid = np.asarray(ds["field_id"].transpose("y", "x").values)
        versions = _season_versions(ds, c, spec, grid, policy, regularisation, season_cuts, rng)
        full = versions[0]
        ok = (label >= 0) & (fid > 0)
        skipped += int((ok & full.bad).sum())
        rows, cols = np.nonzero(ok & ~full.bad)
        if max_pixels_per_cube and rows.size > max_pixels_per_cube:
            pick = np.sort(rng.choice(rows.size, max_pixels_per_cube, replace=False))
            rows, cols = rows[pick], cols[pick]
        which = np.zeros(rows.size, dtype=np.int64)
        if len(versions) > 1:
            rest = (1 - FULL_SEASON_SHARE) / (len(versions) - 1)
            share = np.r_[FULL_SEASON_SHARE, np.full(len(versions) - 1, rest)]
            which = rng.choice(len(versions), size=rows.size, p=share)
        for v, ver in enumerate(versions):
            sel = which == v
            yv = ver.labels[rows[sel], cols[sel]]
            keep = (yv >= 0) & ~ver.bad[rows[sel], cols[sel]]
            r, cc, yv = rows[sel][keep], cols[sel][keep], yv[keep]
            if reference_draws:
                draws = scene_reference_draws(ver.features, label, fid, ver.bad, spec.names,
                                              grid.doys, rng, reference_draws, ver.horizon_doy)
                ref_idx.append(len(refs) + rng.integers(reference_draws, size=r.size))
                refs.extend(draws)
            if context:
                xs.append(patches(ver.features, r, cc, context))
            else:
                xs.append(np.ascontiguousarray(ver.features[:, :, r, cc].transpose(2, 0, 1)))
            if v == 0:
                healthy_full.append(ver.features[:, :, r[yv == 0], cc[yv == 0]].transpose(2, 0, 1))
            ys.append(yv.astype(np.int64))
            keys.append(i * 1_000_000 + fid[r, cc].astype(np.int64))
            horizons.append(np.full(r.size, ver.steps, dtype=np.int64))
        digest.update(np.ascontiguousarray(ds["reflectance"].values).tobytes())
        digest.update(np.ascontiguousarray(label).tobytes())
        names.append(str(c) if isinstance(c, str | Path) else ds.attrs.get("simulation_config",
                                                                              f"cube {i}"))
        if progress:
            progress(i + 1, len(cubes))
    if not xs or sum(len(y) for y in ys) == 0:
        raise ValueError("no labelled pixels with sufficient data in the training cubes")
    x, y = np.concatenate(xs), np.concatenate(ys)
    references = index = None
    if reference_draws:
        builtin = np.median(np.concatenate(healthy_full), axis=0).astype(np.float32)
        index = np.concatenate(ref_idx)
        index = np.where(rng.random(index.size) < BUILTIN_SHARE, len(refs), index)
        fallback = [i for i, r in enumerate(refs) if r is None]
        index = np.where(np.isin(index, fallback), len(refs), index)
        references = np.stack([builtin if r is None else r for r in refs] + [builtin])
    if season_cuts:
        digest.update(f"season_cuts={season_cuts}".encode())
    return TrainingData(
        x=x, y=y, field_key=np.concatenate(keys), spec=spec,
        grid=grid, description=describe_cubes(names),
        data_hash=digest.hexdigest(), excluded_insufficient=skipped,
        references=references, ref_index=index,
        horizon=np.concatenate(horizons) if season_cuts else None,
        meta={"season_cuts": season_cuts} if season_cuts else {},
    )


@dataclass
class _Version:
    """One season version of a training cube: the whole season or a cut."""

    features: np.ndarray  # (T, F, H, W)
    bad: np.ndarray  # (H, W) insufficient data
    labels: np.ndarray  # (H, W) labels visible by the horizon (−1: not trained on)
    horizon_doy: float
    steps: int  # grid steps observed


def _season_versions(ds: xr.Dataset, source: Any, spec: FeatureSpec, grid: TemporalGrid,
                     policy: CloudMaskPolicy | None, regularisation: Regularisation | None,
                     cuts: int, rng: np.random.Generator) -> list[_Version]:
    """The whole season, then ``cuts`` random cuts, each preprocessed from its own
    acquisitions only."""
    label = np.asarray(ds["label"].transpose("y", "x").values)
    fid = np.asarray(ds["field_id"].transpose("y", "x").values)
    onsets: dict[int, float] = {}
    if cuts:
        if not isinstance(source, str | Path):
            raise ValueError("season cuts need simulated scenes on disk (their fields.geojson "
                             "holds the stress onsets)")
        onsets = read_onsets(source)
    out = []
    _, whole = cut_season(ds, grid)
    dates = [None, *(doy_date(whole.year, d)
                     for d in draw_cut_doys(rng, cuts, whole.horizon_doy))] if cuts else [None]
    for when in dates:
        cube, cut = cut_season(ds, grid, when)
        fs = feature_stack(cube, spec, grid, policy, regularisation=regularisation, year=cut.year)
        out.append(_Version(
            features=np.asarray(fs["features"].transpose("doy", "feature", "y", "x").values),
            bad=np.asarray(fs["insufficient_data"].values),
            labels=visible_labels(label, fid, onsets, cut.horizon_doy) if cuts else
            label.astype(np.int64),
            horizon_doy=cut.horizon_doy, steps=cut.observed_steps))
    return out


def describe_cubes(names: list[str], show: int = 6) -> str:
    """"N cube(s): a; b; …" — only the first and last names when there are more than
    ``show`` (the data hash identifies the exact set)."""
    shown = names if len(names) <= show else [
        *names[: show - 1], f"… {len(names) - show} more …", names[-1]]
    return f"{len(names)} cube(s): " + "; ".join(shown)


def field_split(
    field_key: np.ndarray, y: np.ndarray, val_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Train/validation pixel indices split **by field** (stratified by the fields' class)."""
    rng = np.random.default_rng(seed)
    keys, inv = np.unique(field_key, return_inverse=True)
    field_class = np.array([np.bincount(y[inv == i]).argmax() for i in range(len(keys))])
    val_fields: list[int] = []
    for c in np.unique(field_class):
        members = np.flatnonzero(field_class == c)
        n_val = max(1, round(val_fraction * len(members))) if len(members) > 1 else 0
        val_fields += list(rng.choice(members, n_val, replace=False))
    is_val = np.isin(inv, val_fields)
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)
