"""The tile task: ingest → preprocess → predict (→ explain) → the tile's COGs, on a worker.

Everything the task needs travels in a picklable :class:`TileJob`; the task is pure in the
sense that matters for Dask: it only reads its inputs and writes its own tile folder, so a
task re-executed after a worker died (or run twice) is harmless.

The tile folder ``tiles/<id>/`` is produced under a temporary name and renamed when complete
(``stress_map.tif``, ``probabilities.tif``, … from :func:`agrostress.analysis.write_outputs`,
plus ``tile.json``); a killed task leaves at most a ``.<id>.*.tmp`` folder nobody trusts.
The model is loaded once per worker thread (a cache keyed by path and SHA-256; workers run
one thread each by default, so once per worker process).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agrostress.atomic import atomic_path
from agrostress.ingest.aoi import AOI
from agrostress.outputs.cog import map_codes
from agrostress.settings import Settings

TILE_META = "tile.json"
REQUIRED_OUTPUTS = ("stress_map", "probabilities")

_MODELS = threading.local()
_LOADS: list[tuple[str, str, str]] = []
_THREADS_SET: list[int] = []


@dataclass(frozen=True)
class TileJob:
    """One tile's work order (everything a worker needs, nothing it must look up)."""

    tile_id: str
    aoi: AOI
    window: tuple[int, int, int, int]  # row_off, col_off, height, width of the tile in the AOI
    source: str
    start: str
    end: str
    model_dir: str
    model_sha256: str
    tiles_dir: str
    fingerprint_id: str
    explain: bool = False
    settings: Settings | None = None
    analyse_tile: int = 256
    torch_threads: int | None = 1
    #: winter-wheat parcels of the tile (GeoDataFrame in its CRS; empty: none), or None when
    #: the run has no crop attribute (every pixel judged as wheat)
    wheat_parcels: Any = None
    #: the built-in not-wheat detector's folder (runs without a crop attribute), or None
    not_wheat_dir: str | None = None
    #: where the model runs on the worker (``cpu``, ``cuda``, ``cuda:N``, ``mps``)
    device: str = "cpu"


# --------------------------------------------------------------------------- model cache


def get_model(model_dir: str | Path, sha256: str | None = None, device: str = "cpu") -> Any:
    """This worker thread's copy of the checkpoint at ``model_dir``, loaded on first use.

    Dask workers run one thread by default (``threads_per_worker=1``), so this is once per
    worker process; a multi-threaded worker keeps one copy per thread because torch modules
    (and caches inside some operators) are not safe to share between concurrent calls.
    """
    from agrostress.models import load

    cache: dict[tuple[str, str, str], Any] = _MODELS.__dict__.setdefault("models", {})
    key = (str(Path(model_dir).resolve()), sha256 or "", device)
    model = cache.get(key)
    if model is None:
        if not Path(model_dir).is_dir():
            raise FileNotFoundError(
                f"model checkpoint {model_dir} is not visible on worker {socket.gethostname()}"
                " (batch paths must be shared between the client and the workers)"
            )
        model = load(model_dir)
        if sha256 and model.card.weights_sha256 != sha256:
            raise RuntimeError(
                f"model {model_dir} changed during the run (weights sha256 "
                f"{model.card.weights_sha256[:12]}… ≠ {sha256[:12]}…)"
            )
        cache[key] = model.to(device)
        _LOADS.append(key)
    return model


def get_detector(path: str | Path) -> Any:
    """This worker thread's copy of the not-wheat detector at ``path``."""
    from agrostress.analysis.not_wheat import NotWheatDetector

    cache: dict[str, Any] = _MODELS.__dict__.setdefault("detectors", {})
    key = str(Path(path).resolve())
    if key not in cache:
        if not Path(path).is_dir():
            raise FileNotFoundError(f"not-wheat detector {path} is not visible on worker "
                                    f"{socket.gethostname()}")
        cache[key] = NotWheatDetector.load(path)
    return cache[key]


def model_loads() -> int:
    """How many times this process loaded a model (tests check 'once per worker')."""
    return len(_LOADS)


def _set_threads(n: int | None) -> None:
    if not n or _THREADS_SET:
        return
    import torch

    torch.set_num_threads(int(n))
    _THREADS_SET.append(int(n))


# --------------------------------------------------------------------------- the task


def run_tile(job: TileJob) -> dict[str, Any]:
    """Compute one tile and write its folder atomically; return timings, pixels, outputs."""
    from agrostress import analysis as core
    from agrostress.decision import policy_from
    from agrostress.ingest.fetch import fetch_cube

    _set_threads(job.torch_threads)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    model = get_model(job.model_dir, job.model_sha256, job.device)
    detector = None if job.not_wheat_dir is None else get_detector(job.not_wheat_dir)
    timings["model_load"] = time.perf_counter() - t

    t = time.perf_counter()
    cube = fetch_cube(
        job.source, job.aoi, job.start, job.end, settings=job.settings, max_area_km2=None
    )
    cube = cube.load() if hasattr(cube, "load") else cube
    timings["read"] = time.perf_counter() - t

    t = time.perf_counter()
    decision = None if job.settings is None else policy_from(
        job.settings.priors, job.settings.min_confidence, job.settings.max_ood,
        job.settings.season_complete_doy)
    result = core.analyse(cube, model, explain=job.explain, tile=job.analyse_tile,
                          decision=decision, as_of=job.end,  # the period's end: the as-of date
                          wheat_parcels=job.wheat_parcels, not_wheat=detector)
    analyse_s = time.perf_counter() - t
    split = getattr(result, "timings", None) or {}
    timings["read"] += float(split.get("read", 0.0))
    timed = ("preprocess", "reference", "model", "not_wheat", "trajectories", "explain")
    for stage in timed:
        if stage in split:
            timings[stage] = float(split[stage])
    timings["analyse_other"] = max(
        0.0, analyse_s - sum(float(split.get(k, 0.0)) for k in ("read", *timed)))
    del cube

    t = time.perf_counter()
    row, col, h, w = job.window
    result = result.crop(row, col, h, w)
    inside = job.aoi.mask()[row : row + h, col : col + w]
    pixels = count_pixels(result.classes, inside, model.card.class_names)
    target = Path(job.tiles_dir) / job.tile_id
    with atomic_path(target) as tmp:
        tmp.mkdir()
        written = core.write_outputs(result, tmp, plots=False)
        outputs = {str(k): Path(p).name for k, p in dict(written).items()}
        missing = [k for k in REQUIRED_OUTPUTS if k not in outputs]
        if missing:
            raise RuntimeError(f"write_outputs did not write {missing} for tile {job.tile_id}")
        meta = {
            "tile_id": job.tile_id,
            "fingerprint_id": job.fingerprint_id,
            "pixels": pixels,
            "outputs": outputs,
            "window": list(job.window),
        }
        (tmp / TILE_META).write_text(json.dumps(meta, indent=1))
    timings["write"] = time.perf_counter() - t
    return {
        "tile_id": job.tile_id,
        "worker": f"{socket.gethostname()}:{os.getpid()}",
        "peak_rss_mb": _peak_rss_mb(),
        "timings": {k: round(v, 4) for k, v in timings.items()},
        "pixels": pixels,
        "outputs": outputs,
    }


def tile_is_complete(
    tiles_dir: str | Path, tile_id: str, fingerprint: str
) -> dict[str, Any] | None:
    """The tile's ``tile.json`` when its folder is complete and from this request, else None."""
    folder = Path(tiles_dir) / tile_id
    try:
        meta = json.loads((folder / TILE_META).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    if meta.get("tile_id") != tile_id or meta.get("fingerprint_id") != fingerprint:
        return None
    outputs = meta.get("outputs") or {}
    if any(k not in outputs or not (folder / outputs[k]).is_file() for k in REQUIRED_OUTPUTS):
        return None
    return meta


# --------------------------------------------------------------------------- helpers


def _peak_rss_mb() -> float | None:
    """The worker process's peak resident memory so far (MiB), where the OS tells."""
    try:
        import resource
        import sys

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return round(rss / (2**20 if sys.platform == "darwin" else 2**10), 1)
    except (ImportError, OSError):  # pragma: no cover - Windows
        return None


def count_pixels(classes: Any, inside: np.ndarray, class_names: Any) -> dict[str, int]:
    """Pixel counts per outcome (classes, uncertain) inside the region, plus ``nodata``
    (inside) and ``outside``."""
    arr = np.asarray(getattr(classes, "values", classes))
    inside = np.asarray(inside, dtype=bool)
    out = {str(name): int(np.count_nonzero((arr == k) & inside))
           for k, name in map_codes(list(class_names)).items()}
    out["nodata"] = int(np.count_nonzero(inside)) - sum(out.values())
    out["outside"] = int(np.count_nonzero(~inside))
    return out
