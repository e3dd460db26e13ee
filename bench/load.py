"""Load test of the REST service: a greedy client beside a polite one, resources watched.

    python bench/load.py                       # 3 minutes, default model
    python bench/load.py --duration 60 --greedy-threads 4 --cache-max-gb 0.2
    python bench/load.py --calibrate           # peak memory of single analyses vs estimate

Starts the real app (real core path, simulated source) on 127.0.0.1 in this process with a
temporary data dir and two API keys, then for ``--duration`` seconds:

* **greedy** — ``--greedy-threads`` threads submit ``--greedy-ha`` fields in the background
  (``Prefer: respond-async``), a new place each time (every one a cache miss), and retry
  shortly after every 429: it keeps its queue share full;
* **polite** — one synchronous ``--polite-ha`` request every ``--polite-every`` seconds, on a
  few fields of its own (a user looking at their farm);

while a sampler records the process's resident memory, the ingestion cache's size and the
analyses' files. It prints latency per client, the rejected requests by code, peak memory
against the stated bound, and the disk used against the cache limit. Nothing leaves 127.0.0.1.

``--calibrate`` runs single analyses of growing grids, each in a fresh process, and prints
their peak memory above the idle server beside :func:`api.jobs.memory.estimate_job_mb`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from bench.api import END, START, Server, pct, pick_model  # noqa: E402
from bench.api import field as square_field  # noqa: E402

PERIOD_DAYS = (dt.date.fromisoformat(END) - dt.date.fromisoformat(START)).days + 1
KEYS = {"greedy": "greedy-load-test-key-0001", "polite": "polite-load-test-key-0002"}


@dataclass
class ClientLog:
    """What one client saw."""

    latencies: list[float] = field(default_factory=list)  # accepted requests
    codes: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float, r: httpx.Response) -> None:
        code = str(r.status_code)
        if r.status_code >= 400:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                code = f"{r.status_code} {r.json()['error']['code']}"
        with self.lock:
            self.codes[code] += 1
            if r.status_code in (200, 201, 202):
                self.latencies.append(seconds)


@dataclass
class Peaks:
    rss_mb: float = 0.0
    cache_mb: float = 0.0
    analyses_mb: float = 0.0


def folder_mb(path: Path) -> float:
    """Size of the files under ``path`` (temporary ones included); folders and files that
    vanish meanwhile (eviction, renames) are skipped."""
    total = 0
    for top, _, files in os.walk(path, onerror=lambda _e: None):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(top, name)).st_size
    return total / 1e6


def body(fields: dict[str, Any]) -> dict[str, Any]:
    return {"fields": fields, "start": START, "end": END, "source": "simulated"}


def greedy_loop(url: str, log: ClientLog, stop: threading.Event, ha: float,
                counter: Any) -> None:
    headers = {"X-API-Key": KEYS["greedy"], "Prefer": "respond-async"}
    with httpx.Client(timeout=300) as c:
        while not stop.is_set():
            i = next(counter)
            t0 = time.perf_counter()
            r = c.post(f"{url}/v1/analyses", json=body(square_field(100 + i, ha)),
                       headers=headers)
            log.add(time.perf_counter() - t0, r)
            if r.status_code == 429:
                stop.wait(0.5)  # greedy: back at once, whatever Retry-After says


def polite_loop(url: str, log: ClientLog, stop: threading.Event, ha: float,
                every_s: float, n_fields: int) -> None:
    headers = {"X-API-Key": KEYS["polite"]}
    i = 0
    with httpx.Client(timeout=300) as c:
        while not stop.is_set():
            t0 = time.perf_counter()
            r = c.post(f"{url}/v1/analyses", json=body(square_field(i % n_fields, ha)),
                       headers=headers)
            dt = time.perf_counter() - t0
            log.add(dt, r)
            i += 1
            stop.wait(max(0.0, every_s - dt))


def sample(stop: threading.Event, peaks: Peaks, cache: Path, analyses: Path) -> None:
    import psutil

    proc = psutil.Process()
    while not stop.is_set():
        peaks.rss_mb = max(peaks.rss_mb, proc.memory_info().rss / 1e6)
        peaks.cache_mb = max(peaks.cache_mb, folder_mb(cache))
        peaks.analyses_mb = max(peaks.analyses_mb, folder_mb(analyses))
        stop.wait(0.25)


def make_app(tmp: Path, model_dir: Path, args: argparse.Namespace) -> tuple[Any, Any, Any]:
    from agrostress.settings import Settings
    from api.app import create_app
    from api.settings import ApiSettings

    settings = Settings(_env_file=None, data_dir=tmp / "data", model_dir=model_dir,
                        cache_max_gb=args.cache_max_gb)
    api = ApiSettings(_env_file=None, keys=KEYS, job_workers=args.workers,
                      sources=["simulated"], sync_timeout_s=900, plots=not args.no_plots,
                      max_job_memory_mb=args.max_job_memory_mb,
                      sync_max_ha=getattr(args, "sync_max_ha", 500.0))
    return create_app(settings, api), settings, api


def run_load(args: argparse.Namespace) -> dict[str, Any]:
    import itertools

    import psutil

    from api.jobs.memory import estimate_job_mb, job_workers

    tmp = Path(tempfile.mkdtemp(prefix="agrostress-bench-load-"))
    model_dir, model_desc = pick_model(args.model, tmp)
    app, settings, api = make_app(tmp, model_dir, args)
    srv = Server(app)
    idle_mb = psutil.Process().memory_info().rss / 1e6
    cache_dir = settings.ingest_cache_dir()
    logs = {"greedy": ClientLog(), "polite": ClientLog()}
    peaks, stop, sampler_stop = Peaks(rss_mb=idle_mb), threading.Event(), threading.Event()
    counter = itertools.count()
    threads = [threading.Thread(target=sample, args=(sampler_stop, peaks, cache_dir,
                                                     tmp / "data" / "analyses"))]
    threads += [threading.Thread(target=greedy_loop, args=(srv.url, logs["greedy"], stop,
                                                           args.greedy_ha, counter))
                for _ in range(args.greedy_threads)]
    threads.append(threading.Thread(target=polite_loop, args=(
        srv.url, logs["polite"], stop, args.polite_ha, args.polite_every, 3)))
    print(f"model: {model_desc}; {os.cpu_count()} cpus, load average "
          f"{os.getloadavg()[0]:.1f}; {args.duration:.0f} s; idle server {idle_mb:.0f} MB")
    t0 = time.monotonic()
    try:
        for t in threads:
            t.start()
        time.sleep(args.duration)
    finally:
        stop.set()
        for t in threads[1:]:
            t.join(300)
        with httpx.Client(timeout=30) as c:  # what the greedy client got done
            done = c.get(f"{srv.url}/v1/analyses", params={"status": "done", "limit": 1},
                         headers={"X-API-Key": KEYS["greedy"]}).json()["total"]
        srv.stop()
        sampler_stop.set()
        threads[0].join(10)
        shutil.rmtree(tmp, ignore_errors=True)
    wall = time.monotonic() - t0
    side = lambda ha: int((ha * 1e4) ** 0.5 / 10) + 2  # noqa: E731 - grid side in pixels
    est = {name: estimate_job_mb(side(ha) ** 2, PERIOD_DAYS)
           for name, ha in (("greedy", args.greedy_ha), ("polite", args.polite_ha))}
    workers = job_workers(api)
    bound = idle_mb + workers * api.max_job_memory_mb
    running_bound = idle_mb + max(est.values()) * workers
    out = {
        "model": model_desc, "duration_s": wall, "workers": workers,
        "clients": {name: {"requests": sum(log.codes.values()),
                           "accepted": len(log.latencies),
                           "codes": dict(log.codes),
                           "p50_s": pct(log.latencies, 0.5) if log.latencies else None,
                           "p95_s": pct(log.latencies, 0.95) if log.latencies else None}
                    for name, log in logs.items()},
        "greedy_done": done, "estimate_mb": est,
        "rss_idle_mb": idle_mb, "rss_peak_mb": peaks.rss_mb,
        "rss_bound_mb": bound, "rss_bound_for_these_jobs_mb": running_bound,
        "cache_peak_mb": peaks.cache_mb, "cache_limit_mb": settings.cache_max_gb * 1e3,
        "analyses_peak_mb": peaks.analyses_mb,
    }
    print_table(out, args)
    return out


def print_table(out: dict[str, Any], args: argparse.Namespace) -> None:
    print("\n| client | what | requests | accepted | rejected | p50 (s) | p95 (s) |")
    print("|---|---|---|---|---|---|---|")
    what = {"greedy": f"{args.greedy_threads} threads, {args.greedy_ha:g} ha async, new "
                      "fields",
            "polite": f"{args.polite_ha:g} ha sync every {args.polite_every:g} s"}
    for name, c in out["clients"].items():
        rejected = ", ".join(f"{k}: {v}" for k, v in sorted(c["codes"].items())
                             if not k.startswith("20")) or "none"
        p50 = f"{c['p50_s']:.2f}" if c["p50_s"] is not None else "–"
        p95 = f"{c['p95_s']:.2f}" if c["p95_s"] is not None else "–"
        print(f"| {name} | {what[name]} | {c['requests']} | {c['accepted']} | {rejected} | "
              f"{p50} | {p95} |")
    print(f"\ngreedy analyses finished: {out['greedy_done']} in {out['duration_s']:.0f} s; "
          f"job workers: {out['workers']}")
    print(f"resident memory: idle {out['rss_idle_mb']:.0f} MB, peak {out['rss_peak_mb']:.0f} MB; "
          f"bound for these jobs {out['rss_bound_for_these_jobs_mb']:.0f} MB (idle + workers × "
          f"largest estimate), configured bound {out['rss_bound_mb']:.0f} MB")
    print(f"ingestion cache: peak {out['cache_peak_mb']:.0f} MB of {out['cache_limit_mb']:.0f} MB"
          f"; analyses' files: peak {out['analyses_peak_mb']:.0f} MB")


# --------------------------------------------------------------------------- calibration


def calibrate_one(size_m: float, model: str | None, explain: bool) -> dict[str, Any]:
    """Peak resident memory above the idle server of one synchronous analysis."""
    import psutil

    from api.jobs.memory import estimate_job_mb

    tmp = Path(tempfile.mkdtemp(prefix="agrostress-bench-calibrate-"))
    ns = argparse.Namespace(cache_max_gb=0.0, workers=1, no_plots=False,
                            max_job_memory_mb=1e6, sync_max_ha=1e9)
    model_dir, _ = pick_model(model, tmp)
    app, _, _ = make_app(tmp, model_dir, ns)
    srv = Server(app)
    proc, peak, stop = psutil.Process(), [0.0], threading.Event()
    idle = proc.memory_info().rss / 1e6

    def watch() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss / 1e6)
            stop.wait(0.02)

    t = threading.Thread(target=watch)
    t.start()
    ha = (size_m / 100) ** 2
    try:
        with httpx.Client(timeout=900) as c:
            r = c.post(f"{srv.url}/v1/analyses", json={**body(square_field(0, ha)),
                                                       "explain": explain},
                       headers={"X-API-Key": KEYS["polite"]})
    finally:
        stop.set()
        t.join()
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if r.status_code != 201:
        raise SystemExit(f"calibration request failed: {r.status_code} {r.text[:300]}")
    req = r.json()["request"]
    px = round(req["extent_ha"] * 100)
    return {"size_m": size_m, "extent_ha": req["extent_ha"], "explain": explain,
            "peak_above_idle_mb": peak[0] - idle,
            "estimate_mb": estimate_job_mb(px, PERIOD_DAYS, explain)}


def calibrate(args: argparse.Namespace) -> None:
    print("| grid (ha) | explain | peak above idle (MB) | estimate (MB) |\n|---|---|---|---|")
    for size, explain in ((700, False), (1400, False), (2200, False), (3500, False),
                          (7000, False), (1400, True)):
        cmd = [sys.executable, __file__, "--calibrate-one", str(size)]
        cmd += ["--model", args.model] if args.model else []
        cmd += ["--explain"] if explain else []
        res = json.loads(subprocess.run(cmd, check=True, capture_output=True,
                                        text=True).stdout.strip().splitlines()[-1])
        print(f"| {res['extent_ha']:.0f} | {'yes' if explain else 'no'} | "
              f"{res['peak_above_idle_mb']:.0f} | {res['estimate_mb']:.0f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="checkpoint folder (default: AGROSTRESS_MODEL_DIR)")
    ap.add_argument("--duration", type=float, default=180.0, help="seconds of load")
    ap.add_argument("--greedy-threads", type=int, default=4)
    ap.add_argument("--greedy-ha", type=float, default=300.0)
    ap.add_argument("--polite-ha", type=float, default=50.0)
    ap.add_argument("--polite-every", type=float, default=3.0, help="seconds between requests")
    ap.add_argument("--workers", type=int, default=2, help="AGROSTRESS_API_JOB_WORKERS")
    ap.add_argument("--cache-max-gb", type=float, default=0.25, help="AGROSTRESS_CACHE_MAX_GB")
    ap.add_argument("--max-job-memory-mb", type=float, default=4000.0)
    ap.add_argument("--no-plots", action="store_true", help="AGROSTRESS_API_PLOTS=false")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--calibrate", action="store_true", help="memory of single analyses")
    ap.add_argument("--calibrate-one", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--explain", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.calibrate_one:
        print(json.dumps(calibrate_one(args.calibrate_one, args.model, args.explain)))
        return
    if args.calibrate:
        calibrate(args)
        return
    out = run_load(args)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
