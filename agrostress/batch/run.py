"""Run a region batch on Dask: tiles → tasks → tile COGs → mosaics, stats and the manifest.

    from agrostress.batch import run_batch
    manifest = run_batch("region.geojson", "2024-03-01", "2024-07-20", "files", "out/",
                         settings=settings.model_copy(update={"files_dir": "s2/"}), workers=2)

A local cluster (``workers`` processes, one thread each) is started by default; give
``scheduler="tcp://host:8786"`` to use a running cluster, or ``client`` to reuse one.
Paths (``out``, the model, file inputs) must be visible at the same path on every worker.

Resumable: tiles recorded ``done`` in ``out/manifest.json`` whose folder is complete are
skipped; missing, failed or half-written tiles are redone. Fault tolerant: a failing tile is
retried ``retries`` times then recorded ``failed`` while the others go on; tiles of a worker
that dies are recomputed by Dask on the remaining workers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agrostress.analysis.crops import CropSelection
from agrostress.batch.grid import DEFAULT_TILE_SIZE, Tile, TileGrid, make_grid
from agrostress.batch.manifest import MANIFEST_NAME, BatchError, Manifest, TileRecord, now_iso
from agrostress.batch.task import TileJob, run_tile, tile_is_complete
from agrostress.decision import DecisionPolicy, policy_from
from agrostress.outputs.cog import map_codes
from agrostress.settings import Settings, get_settings

LOGGER = logging.getLogger("agrostress.batch")

TILES_DIR = "tiles"
MIN_FETCH_PX = 16
"""Tiles are fetched at least this many pixels a side (the simulator needs 8)."""
MAX_ERROR_CHARS = 2000


@dataclass
class BatchProgress:
    """What a progress callback receives after each tile (and at the start and the end)."""

    stage: str  # "start" | "tile" | "mosaic" | "stats" | "end"
    done: int  # tiles done (including skipped ones)
    failed: int
    total: int
    skipped: int
    km2_done: float  # region km² of the done tiles computed in this run
    km2_todo: float  # region km² of all tiles to compute in this run
    elapsed_s: float
    tile: TileRecord | None = None

    @property
    def km2_per_hour(self) -> float:
        return self.km2_done / self.elapsed_s * 3600.0 if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        rate = self.km2_per_hour
        if rate <= 0:
            return None
        return max(0.0, (self.km2_todo - self.km2_done) / rate * 3600.0)


ProgressFn = Callable[[BatchProgress], None]


STAGES = ("read", "preprocess", "reference", "model", "not_wheat", "trajectories", "explain",
          "write")
"""The stages of a tile task timed on their own (the core path's clock, plus read and write);
the wheat-reference pass includes computing the features it reuses for the tile."""


def stage_shares(stage_seconds: dict[str, float]) -> dict[str, float]:
    """Share of tile time per stage (:data:`STAGES`, then ``other``).

    ``other`` gathers model loading and the rest of the core path (field summaries, …).
    """
    total = sum(float(v) for v in stage_seconds.values())
    if total <= 0:
        return {}
    out = {k: float(stage_seconds[k]) / total for k in STAGES if stage_seconds.get(k)}
    other = total - sum(float(stage_seconds.get(k, 0.0)) for k in STAGES)
    if other > 0:
        out["other"] = other / total
    return out


def default_workers() -> int:
    """Local worker processes when none is asked for: one per core, at most 4."""
    return max(1, min(os.cpu_count() or 1, 4))


def run_batch(
    region: Any,
    start: Any,
    end: Any,
    source: str,
    out: str | Path,
    model_dir: str | Path | None = None,
    *,
    fields: Any = None,
    explain: bool = False,
    tile_size: int = DEFAULT_TILE_SIZE,
    workers: int | None = None,
    scheduler: str | None = None,
    client: Any = None,
    retries: int = 2,
    force: bool = False,
    settings: Settings | None = None,
    region_crs: Any = None,
    progress: ProgressFn | None = None,
    as_of: Any = None,
    crops: CropSelection | None = None,
    not_wheat: bool = True,
    device: str = "cpu",
) -> Manifest:
    """Map ``region`` tile by tile on Dask; return the saved manifest (see module doc).

    ``workers=0`` runs the tasks in this process (threads; for debugging). Raises
    :class:`AOIError` for a bad region, :class:`BatchError` (or subclasses) for a folder that
    holds another request, ``CheckpointError`` for a bad model; tile failures do not raise,
    they are recorded in the manifest. ``as_of``: the date of the call (in season), within
    the period: nothing acquired later is fetched or seen (default: the period's end).
    ``crops``: which of ``fields`` are winter wheat (their crop attribute): every pixel
    outside the wheat parcels is mapped "not wheat"; without it (and with ``not_wheat``) the
    built-in detector of ``settings.not_wheat_model_dir`` marks what is not wheat.
    ``device``: where the workers run the model (``cpu``, ``cuda``, ``cuda:N``, ``mps``).
    """
    from agrostress.analysis import tile_halo
    from agrostress.ingest import get_source, parse_period
    from agrostress.models import load
    from agrostress.preprocess.season import parse_as_of

    if scheduler and client is not None:
        raise ValueError("give either a scheduler address or a client, not both")
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    settings = settings or get_settings()
    t0, t1 = parse_period(start, end)
    if as_of is not None:
        when = parse_as_of(as_of)
        if not t0 <= when <= t1:
            raise ValueError(f"as-of date {when} lies outside the period {t0}..{t1}")
        t1 = when  # what the model may see ends here: nothing later is fetched
    grid = make_grid(region, tile_size, crs=region_crs)
    model_dir = Path(model_dir or settings.model_dir).resolve()
    model = load(model_dir)
    halo = tile_halo(model)
    src = get_source(source, settings)
    field_table = None
    if fields is not None:
        from agrostress.batch.stats import load_fields

        field_table = load_fields(fields)
    wheat = None
    if crops is not None:
        if field_table is None:
            raise BatchError("a crop attribute needs the parcels: give --fields")
        try:
            wheat = field_table[crops.is_wheat(field_table)][["geometry"]]
        except ValueError as e:
            raise BatchError(str(e)) from None

    fingerprint = {
        "region_sha256": grid.region_sha256(),
        "start": t0.isoformat(),
        "end": t1.isoformat(),
        "source": source,
        "source_sha256": _sha256_json(src.identity()),
        "model_sha256": model.card.weights_sha256,
        "model": f"{model.card.name} {model.card.version}",
        "tile_size": grid.tile_size,
        "halo_px": halo,
        "explain": bool(explain),
        "resolution": grid.region.resolution,
        "decision": [settings.priors, settings.min_confidence, settings.max_ood,
                     settings.season_complete_doy],
    }
    detector_dir = None
    if wheat is None and not_wheat:
        from agrostress.analysis.not_wheat import NotWheatDetector

        try:
            detector = NotWheatDetector.from_settings(settings)
        except (FileNotFoundError, ValueError) as e:
            raise BatchError(str(e)) from None
        if detector is not None:
            detector_dir = str(Path(settings.not_wheat_model_dir).resolve())  # type: ignore[arg-type]
            fingerprint["not_wheat_sha256"] = detector.model.card.weights_sha256
    if wheat is not None:  # only then: earlier runs' fingerprints stay valid
        fingerprint["wheat_parcels_sha256"] = hashlib.sha256(
            wheat.to_crs("EPSG:4326").to_json(sort_keys=True).encode()).hexdigest()
    out = Path(out).resolve()
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST_NAME).exists():
        raise BatchError(
            f"{out} is not empty and holds no batch run: choose a new or empty --out folder"
        )
    out.mkdir(parents=True, exist_ok=True)
    manifest, resumed = Manifest.open(out, fingerprint, grid.tiles, force=force)
    tiles_dir = out / TILES_DIR
    if not resumed and tiles_dir.exists():
        _clear_tiles(tiles_dir)  # tiles of another request (--force)
    tiles_dir.mkdir(exist_ok=True)
    _remove_partial(tiles_dir)
    skipped, todo = _reconcile(manifest, tiles_dir)
    manifest.save()

    run: dict[str, Any] = {
        "started": now_iso(),
        "resumed": resumed,
        "scheduler": scheduler or ("client" if client is not None else "local"),
        "workers": None,
        "skipped": len(skipped),
        "computed": 0,
        "failed": 0,
        "retried": 0,
        "status": "running",
    }
    manifest.runs.append(run)
    tile_by_id = {t.id: t for t in grid.tiles}
    jobs = {
        rid: _job(
            tile_by_id[rid],
            grid,
            halo,
            source,
            t0.isoformat(),
            t1.isoformat(),
            model_dir,
            model.card.weights_sha256,
            tiles_dir,
            manifest.fingerprint_id,
            explain,
            settings,
            # local workers: one process per core, one torch thread each; elsewhere the
            # cluster's own layout decides
            1 if scheduler is None and client is None else None,
            wheat,
            detector_dir,
            device,
        )
        for rid in todo
    }
    km2_todo = sum(manifest.tiles[rid].area_km2 for rid in todo)
    state = BatchProgress(
        "start",
        done=len(skipped),
        failed=0,
        total=len(manifest.tiles),
        skipped=len(skipped),
        km2_done=0.0,
        km2_todo=km2_todo,
        elapsed_s=0.0,
    )
    _notify(progress, state)
    stage_totals: dict[str, float] = {}
    clock = {"began": time.perf_counter()}  # reset once the cluster is up
    try:
        if jobs:
            _compute(
                jobs,
                manifest,
                run,
                state,
                stage_totals,
                clock,
                workers=workers,
                scheduler=scheduler,
                client=client,
                retries=retries,
                progress=progress,
            )
        run["status"] = "complete" if manifest.complete else "partial"
    except BaseException as e:
        run["status"] = "interrupted" if isinstance(e, KeyboardInterrupt) else "aborted"
        run["error"] = f"{type(e).__name__}: {e}"[:MAX_ERROR_CHARS]
        raise
    finally:
        run["finished"] = now_iso()
        run["tiles_s"] = round(time.perf_counter() - clock["began"], 3)
        run["km2_computed"] = round(state.km2_done, 4)
        run["km2_per_hour"] = round(state.km2_per_hour, 2) if jobs else None
        run["stage_seconds"] = {k: round(v, 3) for k, v in stage_totals.items()}
        manifest.save()

    decision = policy_from(settings.priors, settings.min_confidence, settings.max_ood,
                           settings.season_complete_doy)
    _finish(manifest, grid, out, model.card.class_names, field_table, run, state, progress,
            decision, model.in_season and decision.in_season(t1.timetuple().tm_yday))
    return manifest


# --------------------------------------------------------------------------- preparation


def _sha256_json(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


_TILE_NAME = re.compile(r"^(\d{5}_x\d{4}_y\d{4}|\..+\.tmp)$")


def _clear_tiles(tiles_dir: Path) -> None:
    """Delete the tile folders of an earlier request (nothing else)."""
    strangers = [p.name for p in tiles_dir.iterdir() if not _TILE_NAME.match(p.name)]
    if strangers:
        raise BatchError(
            f"{tiles_dir} holds files AgroStress did not write ({', '.join(strangers[:3])}); "
            "move them or choose another --out"
        )
    shutil.rmtree(tiles_dir)


def _remove_partial(tiles_dir: Path) -> None:
    """Remove temporary folders left by killed tasks (never trusted, never reused)."""
    for p in tiles_dir.iterdir():
        if p.name.startswith(".") and p.name.endswith(".tmp"):
            shutil.rmtree(p, ignore_errors=True)


def _reconcile(manifest: Manifest, tiles_dir: Path) -> tuple[list[str], list[str]]:
    """(skipped, todo): trust only complete tile folders of this request."""
    skipped, todo = [], []
    for rid, rec in manifest.tiles.items():
        meta = tile_is_complete(tiles_dir, rid, manifest.fingerprint_id)
        if meta is not None:
            if rec.status != "done":  # finished after the last manifest save: adopt it
                rec.status = "done"
                rec.pixels = meta.get("pixels", {})
                rec.outputs = meta.get("outputs", {})
                rec.error = None
                rec.finished = rec.finished or now_iso()
            skipped.append(rid)
        else:
            if rec.status != "pending":
                rec.reset()
            todo.append(rid)
    return skipped, todo


def _job(
    tile: Tile,
    grid: TileGrid,
    halo: int,
    source: str,
    start: str,
    end: str,
    model_dir: Path,
    model_sha: str,
    tiles_dir: Path,
    fingerprint: str,
    explain: bool,
    settings: Settings,
    torch_threads: int | None,
    wheat: Any = None,
    not_wheat_dir: str | None = None,
    device: str = "cpu",
) -> TileJob:
    zone = grid.zone(tile.epsg)
    aoi, (row, col) = tile.fetch_aoi(zone.geometry, halo_px=halo, min_px=MIN_FETCH_PX)
    if wheat is not None:  # the wheat parcels this tile's fetch grid touches, in its CRS
        from shapely.geometry import box

        wheat = wheat.to_crs(aoi.crs).clip(box(*aoi.bounds), keep_geom_type=True)
        wheat = wheat[~wheat.geometry.is_empty]
    return TileJob(
        tile_id=tile.id,
        aoi=aoi,
        window=(row, col, tile.height, tile.width),
        source=source,
        start=start,
        end=end,
        model_dir=str(model_dir),
        model_sha256=model_sha,
        tiles_dir=str(tiles_dir),
        fingerprint_id=fingerprint,
        explain=explain,
        settings=settings,
        analyse_tile=max(aoi.width, aoi.height),
        torch_threads=torch_threads,
        wheat_parcels=wheat,
        not_wheat_dir=not_wheat_dir,
        device=device,
    )


# --------------------------------------------------------------------------- computation


@contextlib.contextmanager
def _dask_client(workers: int | None, scheduler: str | None, client: Any):  # type: ignore[no-untyped-def]
    if client is not None:
        yield client
        return
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            c = Client(scheduler, timeout="30s")
        except OSError as e:
            raise BatchError(f"cannot reach the Dask scheduler at {scheduler}: {e}") from e
        try:
            yield c
        finally:
            c.close()
        return
    n = default_workers() if workers is None else int(workers)
    if n < 0:
        raise ValueError(f"workers must be >= 0, got {n}")
    cluster = LocalCluster(
        n_workers=max(n, 1),
        threads_per_worker=1,
        processes=n > 0,
        dashboard_address="127.0.0.1:0",  # no fixed port; the dashboard stays local
        host="127.0.0.1" if n > 0 else None,
    )
    c = Client(cluster)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


def _compute(
    jobs: dict[str, TileJob],
    manifest: Manifest,
    run: dict[str, Any],
    state: BatchProgress,
    stage_totals: dict[str, float],
    clock: dict[str, float],
    *,
    workers: int | None,
    scheduler: str | None,
    client: Any,
    retries: int,
    progress: ProgressFn | None,
) -> None:
    from distributed import as_completed

    with _dask_client(workers, scheduler, client) as c:
        info = c.scheduler_info()
        run["workers"] = len(info.get("workers", {}))
        if not run["workers"]:
            try:
                c.wait_for_workers(1, timeout=120)
            except TimeoutError as e:
                raise BatchError("no Dask worker joined the scheduler within 120 s") from e
            run["workers"] = len(c.scheduler_info().get("workers", {}))
        run["cluster_start_s"] = round(time.perf_counter() - clock["began"], 3)
        clock["began"] = time.perf_counter()
        attempts: dict[str, int] = dict.fromkeys(jobs, 0)
        futures = {}
        for rid, job in jobs.items():
            futures[_submit(c, job)] = rid
        ac = as_completed(list(futures))
        try:
            for fut in ac:
                rid = futures.pop(fut)
                rec = manifest.tiles[rid]
                attempts[rid] += 1
                rec.attempts += 1
                if fut.status == "finished":
                    res = fut.result()
                    rec.status, rec.error = "done", None
                    rec.timings = res["timings"]
                    rec.pixels = res["pixels"]
                    rec.outputs = res["outputs"]
                    rec.worker = res["worker"]
                    rec.peak_rss_mb = res.get("peak_rss_mb")
                    rec.finished = now_iso()
                    for k, v in res["timings"].items():
                        stage_totals[k] = stage_totals.get(k, 0.0) + float(v)
                    run["computed"] += 1
                    state.done += 1
                    state.km2_done += rec.area_km2
                else:
                    err = _describe(fut)
                    if attempts[rid] <= retries:
                        LOGGER.warning("tile %s failed (attempt %d): %s", rid, attempts[rid], err)
                        run["retried"] += 1
                        rec.error = err
                        nf = _submit(c, jobs[rid])
                        futures[nf] = rid
                        ac.add(nf)
                        fut.release()
                        manifest.save()
                        continue
                    LOGGER.error("tile %s failed after %d attempt(s): %s", rid, attempts[rid], err)
                    rec.status, rec.error = "failed", err
                    rec.finished = now_iso()
                    run["failed"] += 1
                    state.failed += 1
                fut.release()
                manifest.save()
                state.stage, state.tile = "tile", rec
                state.elapsed_s = time.perf_counter() - clock["began"]
                _notify(progress, state)
        except BaseException:
            for f in list(futures):
                f.cancel()
            raise


def _submit(client: Any, job: TileJob) -> Any:
    key = f"agrostress-tile-{job.tile_id}-{uuid.uuid4().hex[:8]}"
    return client.submit(run_tile, job, key=key, pure=False)


def _describe(fut: Any) -> str:
    try:
        exc = fut.exception()
    except Exception as e:  # cancelled futures raise here
        exc = e
    text = f"{type(exc).__name__}: {exc}"
    return text[:MAX_ERROR_CHARS]


def _notify(progress: ProgressFn | None, state: BatchProgress) -> None:
    if progress is None:
        return
    try:
        progress(dataclasses.replace(state))  # a snapshot: callers may keep it
    except Exception:  # a broken progress display never stops a batch
        LOGGER.debug("progress callback failed", exc_info=True)


# --------------------------------------------------------------------------- outputs


def _finish(
    manifest: Manifest,
    grid: TileGrid,
    out: Path,
    class_names: list[str],
    field_table: Any,
    run: dict[str, Any],
    state: BatchProgress,
    progress: ProgressFn | None,
    decision: DecisionPolicy,
    in_season: bool,
) -> None:
    from pyproj import CRS

    from agrostress.batch.mosaic import Placement, build_vrt, overview_resampling, vrt_to_cog
    from agrostress.batch.stats import ZoneRasters, field_statistics, write_table

    state.stage, state.tile = "mosaic", None
    _notify(progress, state)
    tiles_dir = out / TILES_DIR
    done_ids = sorted(r.id for r in manifest.by_status("done"))
    mosaic_key = _sha256_json([manifest.fingerprint_id, done_ids])
    outputs: dict[str, Any] = {}
    multi = len(grid.zones) > 1
    zone_rasters: list[ZoneRasters] = []
    reuse = manifest.outputs.get("mosaic_key") == mosaic_key and all(
        (out / p).exists() for p in manifest.outputs.get("files", {}).values()
    )
    for zone in grid.zones:
        recs = [manifest.tiles[t.id] for t in zone.tiles if manifest.tiles[t.id].status == "done"]
        if not recs:
            continue
        suffix = f"_{zone.epsg}" if multi else ""
        products = [k for k, v in recs[0].outputs.items() if str(v).endswith(".tif")]
        files: dict[str, str] = {}
        for product in products:
            placements = [
                Placement(
                    tiles_dir / r.id / r.outputs[product],
                    col_off=round((r.bounds[0] - zone.bounds[0]) / zone.resolution),
                    row_off=round((zone.bounds[3] - r.bounds[3]) / zone.resolution),
                    width=r.width,
                    height=r.height,
                )
                for r in recs
                if product in r.outputs
            ]
            vrt = out / f"{product}{suffix}.vrt"
            cog = out / f"{product}{suffix}.tif"
            if not reuse:
                build_vrt(
                    vrt,
                    placements,
                    width=zone.width,
                    height=zone.height,
                    transform=zone.transform,
                    crs_wkt=CRS.from_epsg(zone.epsg).to_wkt(),
                )
                vrt_to_cog(vrt, cog, resampling=overview_resampling(placements[0].path))
                if product == "stress_map":
                    _class_sidecars(cog, class_names)
            files[f"{product}{suffix}_vrt"] = vrt.name
            files[f"{product}{suffix}_cog"] = cog.name
        outputs.setdefault("files", {}).update(files)
        if "stress_map" in products and "probabilities" in products:
            zone_rasters.append(
                ZoneRasters(
                    zone.epsg,
                    zone.geometry,
                    zone.transform,
                    zone.width,
                    zone.height,
                    out / f"stress_map{suffix}.tif",
                    out / f"probabilities{suffix}.tif",
                )
            )
    outputs["mosaic_key"] = mosaic_key
    outputs["zones"] = [
        {
            "epsg": z.epsg,
            "bounds": list(z.bounds),
            "width": z.width,
            "height": z.height,
            "tiles": len(z.tiles),
        }
        for z in grid.zones
    ]
    if field_table is not None and zone_rasters:
        state.stage = "stats"
        _notify(progress, state)
        table = field_statistics(
            field_table, zone_rasters, class_names, resolution=grid.region.resolution,
            decision=decision, in_season=in_season
        )
        for k, p in write_table(table, out).items():
            outputs.setdefault("files", {})[k] = p.name
        outputs["fields"] = len(table)
    manifest.outputs = outputs
    manifest.summary = _summary(manifest, grid, class_names)
    manifest.save()
    state.stage = "end"
    _notify(progress, state)


def _class_sidecars(cog: Path, class_names: list[str]) -> None:
    """QGIS style and GDAL category names next to the class mosaic (as for single maps)."""
    from agrostress.outputs import write_class_sidecars

    write_class_sidecars(cog, class_names)


def _summary(manifest: Manifest, grid: TileGrid, class_names: list[str]) -> dict[str, Any]:
    r = grid.region.resolution
    ha = r * r / 1e4
    done = manifest.by_status("done")
    hectares = {name: 0.0 for name in map_codes(class_names).values()}
    hectares["nodata"] = 0.0
    for rec in done:
        for k in hectares:
            hectares[k] += rec.pixels.get(k, 0) * ha
    counts = manifest.counts()
    rss = [r.peak_rss_mb for r in done if r.peak_rss_mb]
    return {
        "tiles": len(manifest.tiles),
        **counts,
        "region_km2": round(grid.area_km2, 4),
        "km2_done": round(sum(rec.area_km2 for rec in done), 4),
        "hectares": {k: round(v, 2) for k, v in hectares.items()},
        "zones": [z.epsg for z in grid.zones],
        "worker_peak_rss_mb": max(rss) if rss else None,
        "failed_tiles": [
            {"id": rec.id, "error": rec.error} for rec in manifest.by_status("failed")
        ],
    }
