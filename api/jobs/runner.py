"""The job runner: a bounded thread pool running fetch → analyse → write, state in the database.

Each process has an ``instance`` id; it owns the jobs it queued and refreshes their heartbeat.
Jobs whose owner stopped (released at a clean shutdown, or silent for three heartbeats after a
crash) are taken over by a live process: resumed from the stored request, or marked
``failed/interrupted`` when resuming is off or the job used up its attempts. No job is lost
silently.

Artefacts go to ``<data_dir>/analyses/<id>/`` (names from
:data:`api.jobs.artefacts.ARTEFACTS`); the folder appears atomically (written under a
temporary name, then renamed). Finished analyses are kept ``retention_days`` and while their
files fit in ``artefacts_max_gb`` (:meth:`JobRunner.clean_analyses`).

Jobs wait in a :class:`api.jobs.fair_queue.FairQueue`: the workers (``job_workers``, fewer when
memory is short: :func:`api.jobs.memory.job_workers`) take them round the clients.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import shutil
import threading
import time
import uuid
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from agrostress.analysis.crops import CropSelection
from agrostress.analysis.not_wheat import NotWheatDetector
from agrostress.decision import policy_from
from agrostress.outputs.summary import field_entries
from agrostress.settings import Settings
from api.db import ACTIVE, Store, utcnow
from api.errors import ApiError, jsonable
from api.jobs.artefacts import ARTEFACTS, ID_RE, ZONES_FILE
from api.jobs.core import Core, classify
from api.jobs.fair_queue import FairQueue
from api.jobs.memory import job_workers
from api.jobs.progress import JobInterrupted, JobProgress
from api.jobs.renders import Renders
from api.registry import ModelRegistry, ServedModel
from api.settings import ApiSettings
from api.zones import class_zones, map_bounds_wgs84

LOGGER = logging.getLogger("agrostress.api.jobs")


QUIET_S = 2.0
"""Seconds without any analysis before PNGs are drawn in the background."""

CLEANUP_EVERY_S = 600.0
"""How often the heartbeat thread applies the retention limits."""


def _write_zones(folder: Path, class_names: list[str]) -> None:
    """The class zones of ``folder``'s stress map as GeoJSON (written atomically)."""
    tmp = folder / f".{ZONES_FILE}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        tmp.write_text(json.dumps(class_zones(folder / "stress_map.tif", class_names)))
        os.replace(tmp, folder / ZONES_FILE)
    finally:
        tmp.unlink(missing_ok=True)


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


class JobRunner:
    """Runs analyses in a bounded pool; owns their rows while they are active."""

    def __init__(
        self,
        settings: Settings,
        api: ApiSettings,
        store: Store,
        models: ModelRegistry,
        core: Core | None,
        data_dir: Path,
    ):
        self.settings, self.api = settings, api
        self.store, self.models, self.core = store, models, core
        self.analyses_dir = Path(data_dir) / "analyses"
        self.analyses_dir.mkdir(parents=True, exist_ok=True)
        self.instance = uuid.uuid4().hex
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._detector: NotWheatDetector | None = None
        self._detector_loaded = False
        self._futures: dict[str, Future[None]] = {}
        self._clients: dict[str, str] = {}  # analysis id → client, while pending here
        self.workers = job_workers(api)
        self._queue: FairQueue[tuple[str, Future[None]]] = FairQueue(
            min(api.running_per_client(), self.workers))
        self._threads = [threading.Thread(target=self._work, name=f"agrostress-job-{i}",
                                          daemon=True) for i in range(self.workers)]
        self._beat = threading.Thread(target=self._beat_loop, name="agrostress-jobs-beat", daemon=True)
        self._last_cleanup = 0.0
        self._last_activity = time.monotonic()
        self.renders = Renders(store, self.artefact_dir, idle=self._quiet)
        for served in models.models.values():  # one replica per worker: no queue on a lock
            served.provision(self.workers)

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Take over orphaned jobs now, then keep heartbeat and takeover running."""
        self._clean_tmp()
        for t in self._threads:
            t.start()
        self.renders.start()
        self.recover()
        self._beat.start()

    def shutdown(self, grace_s: float = 10.0) -> None:
        """Stop: cancel queued jobs, interrupt running ones, release every active row."""
        self.stopping.set()
        for _, fut in self._queue.close():  # queued here: cancelled, the rows released below
            fut.cancel()
        deadline = time.monotonic() + grace_s
        for fut in list(self._futures.values()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            with contextlib.suppress(BaseException):  # cancelled / interrupted / reported
                fut.result(timeout=remaining)
        self.renders.close()
        self._beat.join(timeout=5)
        released = self.store.release(self.instance)
        if released:
            LOGGER.info("released %d unfinished job(s) for the next start", released)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._futures)

    def _quiet(self) -> bool:
        """No analysis queued or running, and none for :data:`QUIET_S` (background work then
        does not slow the next request of a client that is still busy)."""
        return self.pending == 0 and time.monotonic() - self._last_activity > QUIET_S

    def _work(self) -> None:
        """A job worker: run the jobs the fair queue hands out until it closes."""
        while (got := self._queue.take()) is not None:
            client, (analysis_id, fut) = got
            try:
                if fut.set_running_or_notify_cancel():
                    try:
                        self._run(analysis_id)
                    except BaseException as e:  # noqa: BLE001 - _run reports; keep the worker
                        fut.set_exception(e)
                    else:
                        fut.set_result(None)
            finally:
                self._queue.done(client)

    def alive(self) -> bool:
        return not self.stopping.is_set() and self._beat.is_alive()

    # ----------------------------------------------------------------- submission

    def admit(self, client: str) -> None:
        """Refuse now (before anything is stored) when a job of ``client`` could not be
        queued: 503 while shutting down, 429 when the queue or the client's share is full."""
        with self._lock:
            self._check_capacity(client)

    def _check_capacity(self, client: str, share: bool = True) -> None:
        if self.stopping.is_set():
            raise ApiError(503, "shutting_down", "the server is shutting down; retry later")
        if len(self._futures) >= self.api.max_pending_jobs:
            raise ApiError(
                429,
                "queue_full",
                f"{len(self._futures)} analyses are queued or running on this server "
                f"(limit {self.api.max_pending_jobs}, "
                f"{ApiSettings.env_name('max_pending_jobs')}); retry later",
                headers={"Retry-After": "10"},
            )
        if not (share and self.api.client_keys()):
            return
        mine = sum(1 for c in self._clients.values() if c == client)
        if mine >= self.api.client_max_pending:
            raise ApiError(
                429,
                "client_queue_full",
                f"{mine} of your analyses are queued or running (limit "
                f"{self.api.client_max_pending}, {ApiSettings.env_name('client_max_pending')}); "
                "retry when one has finished",
                details={"limit": self.api.client_max_pending,
                         "setting": ApiSettings.env_name("client_max_pending")},
                headers={"Retry-After": "10"},
            )

    def submit(self, analysis_id: str, client: str, *, share: bool = True) -> Future[None]:
        """Queue a job of ``client`` this process owns; 429 when the queue (or, with
        ``share``, the client's share of it) is full. Jobs taken over from another process
        count against the whole queue only."""
        fut: Future[None] = Future()
        self._last_activity = time.monotonic()
        with self._lock:
            self._check_capacity(client, share)
            self._futures[analysis_id] = fut
            self._clients[analysis_id] = client
            self._queue.put(client, (analysis_id, fut))
        fut.add_done_callback(lambda _f: self._forget(analysis_id))
        return fut

    def _forget(self, analysis_id: str) -> None:
        self._last_activity = time.monotonic()
        with self._lock:
            self._futures.pop(analysis_id, None)
            self._clients.pop(analysis_id, None)

    # ----------------------------------------------------------------- takeover

    def recover(self) -> int:
        """Resume or fail jobs whose owner is gone; returns how many were taken over."""
        stale = utcnow() - dt.timedelta(seconds=3 * self.api.job_heartbeat_s)
        n = 0
        for row in self.store.orphans(stale):
            if row["id"] in self._futures or self.stopping.is_set():
                continue
            resume = (
                self.api.resume_jobs
                and row["attempts"] < self.api.job_max_attempts
            )
            if resume and self.pending < self.api.max_pending_jobs:
                if self.store.claim(row, self.instance, status="queued", stage="resumed",
                                    progress=0.0):
                    LOGGER.warning("resuming interrupted analysis %s", row["id"])
                    try:
                        self.submit(row["id"], row.get("client") or "", share=False)
                    except ApiError:  # stopping meanwhile: no heartbeat = the next process's
                        self.store.update(row["id"], heartbeat_at=None)
                    n += 1
            elif not resume and self.store.claim(
                row,
                self.instance,
                status="failed",
                stage="failed",
                error_code="interrupted",
                error_message=(
                    "the server stopped while this analysis was "
                    f"{'running' if row['status'] == 'running' else 'queued'}"
                    f" (after {row['attempts']} attempt(s)); submit it again"
                ),
                finished_at=utcnow(),
            ):
                LOGGER.warning("analysis %s was interrupted: marked failed", row["id"])
                n += 1
        return n

    def _beat_loop(self) -> None:
        while not self.stopping.wait(self.api.job_heartbeat_s):
            try:
                self.store.heartbeat(self.instance)
                self.recover()
                if time.monotonic() - self._last_cleanup > CLEANUP_EVERY_S:
                    self._last_cleanup = time.monotonic()
                    self.clean_analyses()
            except Exception:  # noqa: BLE001 - keep beating through transient DB errors
                LOGGER.exception("job heartbeat failed")

    def clean_analyses(self, now: dt.datetime | None = None) -> list[str]:
        """Delete finished analyses (row and files) older than ``retention_days``, then the
        oldest finished ones while the files exceed ``artefacts_max_gb``; the ids deleted.

        Only analyses that are done or failed are touched: queued and running ones (of any
        process) and folders still being written are never deleted.
        """
        now = now or utcnow()
        deleted: list[str] = []
        if self.api.retention_days > 0:
            cutoff = now - dt.timedelta(days=self.api.retention_days)
            for analysis_id in self.store.finished_before(cutoff):
                self._delete_analysis(analysis_id)
                deleted.append(analysis_id)
        if self.api.artefacts_max_gb > 0:
            folders = {p.name: p for p in self.analyses_dir.iterdir()
                       if p.is_dir() and ID_RE.fullmatch(p.name)}
            sizes = {name: _folder_bytes(p) for name, p in folders.items()}
            total, limit = sum(sizes.values()), self.api.artefacts_max_gb * 1e9
            if total > limit:
                rows = self.store.statuses(sorted(folders))
                finished = sorted(
                    (fin or dt.datetime.min, name) for name, (status, fin) in rows.items()
                    if status not in ACTIVE and name not in self._futures
                    and not self.renders.pending_here(name))
                for _, name in finished:
                    if total <= limit:
                        break
                    self._delete_analysis(name)
                    total -= sizes[name]
                    deleted.append(name)
        if deleted:
            LOGGER.info("deleted %d finished analyses (retention %s days, %s GB of files)",
                        len(deleted), self.api.retention_days, self.api.artefacts_max_gb)
        return deleted

    def _delete_analysis(self, analysis_id: str) -> None:
        """Remove an analysis: its row first (it is gone for clients at once), then its files."""
        self.store.delete(analysis_id)
        shutil.rmtree(self.artefact_dir(analysis_id), ignore_errors=True)

    def _clean_tmp(self, older_than_s: float = 6 * 3600) -> None:
        """Remove temporary output folders left by a crash (old ones: others may be writing)."""
        now = time.time()
        for p in self.analyses_dir.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                if now - p.stat().st_mtime > older_than_s:
                    shutil.rmtree(p, ignore_errors=True)

    # ----------------------------------------------------------------- the job

    def _run(self, analysis_id: str) -> None:
        row = self.store.get(analysis_id)
        if row is None or row["status"] not in ACTIVE or row["owner"] != self.instance:
            return
        progress = JobProgress(self.store, self.instance, self.stopping, analysis_id)
        try:
            served = self.models.get(row["model_id"])
            if self.core is None:
                raise ApiError(503, "core_unavailable", "the analysis core is not available")
            if served is None:
                raise ApiError(
                    503, "model_unavailable", f"model {row['model_id']!r} is not loaded"
                )
            if self.stopping.is_set():
                raise JobInterrupted(analysis_id)
            self.store.update(
                analysis_id,
                owner=self.instance,
                status="running",
                stage="fetch",
                progress=0.01,
                started_at=utcnow(),
                attempts=row["attempts"] + 1,
            )
            result, analysed = self._execute(analysis_id, row["request"], served, progress)
            names = list(served.card.class_names)
        except JobInterrupted:
            LOGGER.info("analysis %s interrupted by shutdown", analysis_id)
            return
        except ApiError as e:
            self._fail(analysis_id, e.code, e.message)
            return
        except BaseException as e:  # noqa: BLE001 - a job never takes the process down
            if self.stopping.is_set():  # e.g. the interruption re-raised by a source's threads
                LOGGER.info("analysis %s stopped by shutdown (%s)", analysis_id, type(e).__name__)
                return
            code, message = classify(e)
            if code == "analysis_failed":
                LOGGER.exception("analysis %s failed", analysis_id)
            else:
                LOGGER.info("analysis %s failed: %s: %s", analysis_id, code, e)  # unredacted
            self._fail(analysis_id, code, message)
            return
        if result["rendering"]:  # drawn on first request, or when the workers are idle
            self.renders.add(analysis_id, lambda folder: self._draw(analysed, folder, names),
                             result["rendering"])
        self.store.update(
            analysis_id,
            owner=self.instance,
            status="done",
            stage="done",
            progress=1.0,
            result=result,
            finished_at=utcnow(),
        )

    def _draw(self, analysed: Any, folder: Path, class_names: list[str]) -> list[str]:
        """Draw the PNGs of a finished analysis, and its class zones, into its folder (see
        :mod:`api.jobs.renders`); the names of the files drawn."""
        assert self.core is not None and self.core.render_outputs is not None
        drawn = list(self.core.render_outputs(analysed, folder, plots=self.api.plots))
        if (folder / "stress_map.tif").is_file():
            _write_zones(folder, class_names)
            drawn.append(ZONES_FILE)
        return drawn

    def _fail(self, analysis_id: str, code: str, message: str) -> None:
        self.store.update(
            analysis_id,
            owner=self.instance,
            status="failed",
            stage="failed",
            error_code=code,
            error_message=message[:2000],
            finished_at=utcnow(),
        )

    def _execute(
        self, analysis_id: str, req: dict[str, Any], served: ServedModel, progress: JobProgress
    ) -> tuple[dict[str, Any], Any]:
        """Fetch, analyse and write; (the stored result, the core's result object)."""
        import geopandas as gpd
        import shapely

        assert self.core is not None
        fields = gpd.GeoDataFrame.from_features(req["fields"]["features"], crs="EPSG:4326")
        fields["field_id"] = fields["field_id"].astype("int64")
        names = {int(fid): name for fid, name in zip(fields["field_id"], fields["name"], strict=True)}
        union = shapely.union_all(fields.geometry.values)
        cache_dir = self.settings.ingest_cache_dir() if self.api.use_cache else None
        progress.set("fetch", 0.02, force=True)
        as_of = req.get("as_of") or req["end"]  # nothing later is fetched or seen
        cube = self.core.fetch_cube(
            req["source"],
            union,
            req["start"],
            as_of,
            cache_dir=cache_dir,
            settings=self.settings,
            progress=progress.fetch,
            max_area_km2=None,
            aoi_crs="EPSG:4326",
        )
        reference = None
        if self._wants_buffer(served, len(fields)):
            reference = self._buffer_reference(req, fields, served, cache_dir)
        progress.set("analyse", JobProgress.ANALYSE[0], force=True)
        crops = None
        if req.get("crops"):  # each field's crop is its "crop" property (api.validation)
            crops = CropSelection("crop", frozenset(req["crops"]["values"]))
        detector = None if crops is not None else self._not_wheat()
        with served.lease() as model:
            result = self.core.analyse(
                cube,
                model,
                fields=fields[["field_id", "geometry", *(["crop"] if crops else [])]],
                explain=bool(req.get("explain")),
                method=req.get("method", "ig"),
                progress=progress.analyse,
                decision=policy_from(self.settings.priors, self.settings.min_confidence,
                                     self.settings.max_ood, self.settings.season_complete_doy),
                as_of=as_of,
                **({"crops": crops} if crops is not None else {}),
                **({"not_wheat": detector} if detector is not None else {}),
                **({"reference": reference} if reference is not None else {}),
            )
        progress.set("write", 0.95, force=True)
        return self._write(analysis_id, result, served, names), result

    def _not_wheat(self) -> NotWheatDetector | None:
        """The built-in not-wheat detector of the settings, loaded once."""
        with self._lock:
            if not self._detector_loaded:
                self._detector = NotWheatDetector.from_settings(self.settings)
                self._detector_loaded = True
            return self._detector

    def _wants_buffer(self, served: ServedModel, n_fields: int) -> bool:
        """A buffer is fetched for the reference when set, offered by the core, the model
        judges against a reference, and the request has too few fields for its own."""
        from agrostress.preprocess.reference import MIN_GROUPS

        return (self.api.reference_buffer_m > 0
                and self.core is not None and self.core.request_reference is not None
                and bool(served.model.uses_reference) and n_fields < MIN_GROUPS)

    def _buffer_reference(self, req: dict[str, Any], fields: Any, served: ServedModel,
                          cache_dir: Any) -> Any:
        """The reference from the wheat within ``reference_buffer_m`` of the fields; the
        built-in one (None here) when the buffer holds too little either."""
        import shapely

        utm = fields.estimate_utm_crs()
        ring = fields.to_crs(utm).geometry.buffer(self.api.reference_buffer_m)
        wide = shapely.union_all(ring.to_crs("EPSG:4326").values)
        assert self.core is not None and self.core.request_reference is not None
        as_of = req.get("as_of") or req["end"]
        cube = self.core.fetch_cube(req["source"], wide, req["start"], as_of,
                                    cache_dir=cache_dir, settings=self.settings,
                                    max_area_km2=None, aoi_crs="EPSG:4326")
        with served.lease() as model:
            ref = self.core.request_reference(cube, model, as_of=as_of)
        return ref if ref.source == "scene" else None

    def artefact_dir(self, analysis_id: str) -> Path:
        """The artefact folder of a (validated) analysis id."""
        if not ID_RE.fullmatch(analysis_id):
            raise ValueError("invalid analysis id")
        return self.analyses_dir / analysis_id

    def _write(
        self,
        analysis_id: str,
        result: Any,
        served: ServedModel,
        names: dict[int, str | None],
    ) -> dict[str, Any]:
        final = self.artefact_dir(analysis_id)
        tmp = self.analyses_dir / f".{analysis_id}.{uuid.uuid4().hex[:8]}.tmp"
        tmp.mkdir(parents=True)
        assert self.core is not None
        later = self.core.renders_later  # the PNGs are drawn after the answer
        try:
            self.core.write_outputs(result, tmp, plots=self.api.plots,
                                    **({"renders": False} if later else {}))
            bounds = None
            has_map = (tmp / "stress_map.tif").is_file()
            if has_map:
                if not later:  # else drawn with the PNGs, after the answer
                    _write_zones(tmp, list(served.card.class_names))
                bounds = map_bounds_wgs84(tmp / "stress_map.tif")
            current = self.store.get(analysis_id)
            if current is None or current["owner"] != self.instance:
                raise JobInterrupted(analysis_id)  # taken over meanwhile: its run writes
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        fields = []
        for f in field_entries(result):
            d = {"call_since": None, "timeline": None, **jsonable(dict(f))}
            fid = d.get("field_id")
            d["name"] = names.get(int(fid)) if isinstance(fid, int | float) else None
            fields.append(d)
        rendering = (sorted([*self.core.pending_renders(result, plots=self.api.plots),
                             *([ZONES_FILE] if has_map else [])])
                     if later else [])  # type: ignore[misc]
        written = {n for n in ARTEFACTS if (final / n).is_file()}
        return {
            "fields": fields,
            "totals": jsonable(result.totals),
            "artefacts": sorted(written | set(rendering)),
            "rendering": rendering,
            "map_bounds_wgs84": bounds,
            "decision": jsonable(result.meta.get("decision")),
            "reference": jsonable(result.meta.get("reference")),
            "season": jsonable(result.meta.get("season")),
        }
