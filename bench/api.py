"""REST service latency and throughput: a 50 ha field through ``POST /v1/analyses``.

    python bench/api.py                          # default model (AGROSTRESS_MODEL_DIR)
    python bench/api.py --model DIR --n 10 --concurrency 1,4,8 --requests 24

Starts the real app (real core path) on 127.0.0.1 in this process with a temporary data dir,
database and cache, then measures client-side latency (p50/p95) of synchronous requests:

* ``simulated, cold``   — a new field each time: the simulator runs (no cache hit);
* ``simulated, cached`` — the same field again: the cube comes from the ingestion cache;
* ``in season, cached`` — the same field as of mid-May (``as_of``: the call with the later
  acquisitions dropped and the later steps masked, plus the per-field time line);
* ``files, uncached``   — a GeoTIFF folder (written from a simulated cube) read every time;
* ``files, cached``     — the same request through the cache;

and throughput (analyses/s) with C concurrent clients on cached fields. Without a loadable
model an untrained FFDNN of the same shape is used (latency does not depend on the weights).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

# This file is named like the ``api`` package: run as a script, its folder must not shadow it.
_HERE, _ROOT = Path(__file__).resolve().parent, Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

START, END = "2024-03-01", "2024-07-20"
AS_OF = "2024-05-15"  # DOY 136: stem elongation to flag leaf, when a call can still act


def field(i: int, ha: float = 50.0) -> dict[str, Any]:
    """A square field of ``ha`` hectares; ``i`` moves it (distinct fields, distinct cubes)."""
    side = math.sqrt(ha * 1e4)
    lon, lat = 5.0 + 0.02 * (i % 10), 51.0 + 0.02 * (i // 10)
    dlat, dlon = side / 111_320.0, side / (111_320.0 * math.cos(math.radians(lat)))
    ring = [[lon, lat], [lon + dlon, lat], [lon + dlon, lat + dlat], [lon, lat + dlat], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


def untrained_model(out: Path) -> Path:
    """An FFDNN checkpoint with random weights (7 features × 29 steps, like the default)."""
    import torch

    from agrostress.models import ModelCard, create_model, save

    feats = ["LAI", "LCC", "NDREI", "MTCI", "S2REP", "REDSI", "PSRI"]
    norm = {"features": feats, "mean": [2.3, 35.4, 0.57, 2.9, 722.8, 152.1, 0.018],
            "std": [1.1, 9.9, 0.13, 1.3, 4.9, 184.1, 0.041],
            "lo": [0.6, 7.3, 0.21, 0.41, 696.7, -72.4, -0.046],
            "hi": [5.6, 52.1, 0.81, 6.8, 732.3, 1039.2, 0.17]}
    torch.manual_seed(0)
    card = ModelCard(name="ffdnn-untrained", architecture="ffdnn", config={}, n_features=7,
                     n_steps=29, feature_spec=feats, grid="60:200:5", normalisation=norm)
    return save(create_model("ffdnn", n_features=7, n_steps=29, n_classes=3), card, out)


def pick_model(arg: str | None, tmp: Path) -> tuple[Path, str]:
    from agrostress.models import CheckpointError, load
    from agrostress.settings import get_settings

    path = Path(arg) if arg else get_settings().model_dir
    try:
        card = load(path).card
        return path, f"{card.name} v{card.version} ({path})"
    except (CheckpointError, OSError) as e:
        if arg:
            raise SystemExit(f"cannot load --model {arg}: {e}") from e
        return untrained_model(tmp / "model"), f"untrained FFDNN ({path} not loadable: {e})"


class ServeProcess:
    """``agrostress serve --workers N`` in a subprocess (several server processes, as deployed),
    with the settings of ``settings`` / ``api`` passed as environment variables."""

    def __init__(self, settings: Any, api: Any, processes: int):
        import subprocess

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ,
               "AGROSTRESS_DATA_DIR": str(settings.data_dir),
               "AGROSTRESS_CACHE_DIR": str(settings.cache_dir),
               "AGROSTRESS_MODEL_DIR": str(settings.model_dir),
               "AGROSTRESS_FILES_DIR": str(settings.files_dir),
               "AGROSTRESS_API_JOB_WORKERS": str(api.job_workers),
               "AGROSTRESS_API_MAX_PENDING_JOBS": str(api.max_pending_jobs),
               "AGROSTRESS_API_SOURCES": ",".join(api.sources),
               "AGROSTRESS_API_SYNC_TIMEOUT_S": str(api.sync_timeout_s),
               "AGROSTRESS_API_PLOTS": str(api.plots).lower()}
        env.pop("AGROSTRESS_API_TORCH_THREADS", None)  # serve shares the cores out
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from agrostress.cli import app; app()", "serve", "--port",
             str(self.port), "--workers", str(processes), "--log-level", "warning"], env=env)
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("agrostress serve did not start")
            time.sleep(0.5)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


class Server:
    def __init__(self, app: Any):
        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise SystemExit("the server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(60)


def post(url: str, fields: dict[str, Any], source: str, as_of: str | None = None) -> float:
    body = {"fields": fields, "start": START, "end": END, "source": source}
    if as_of:
        body["as_of"] = as_of
    t0 = time.perf_counter()
    with httpx.Client(timeout=900) as c:
        r = c.post(f"{url}/v1/analyses", json=body)
    dt = time.perf_counter() - t0
    if r.status_code != 201:
        raise SystemExit(f"request failed: {r.status_code} {r.text[:500]}")
    return dt


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    if len(v) == 1:
        return v[0]
    k = (len(v) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def clear(cache: Path) -> None:
    for p in cache.glob("*"):
        shutil.rmtree(p) if p.is_dir() else p.unlink()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="checkpoint folder (default: AGROSTRESS_MODEL_DIR)")
    ap.add_argument("--n", type=int, default=10, help="requests per cached/uncached scenario")
    ap.add_argument("--cold", type=int, default=3, help="requests of the simulated-cold scenario")
    ap.add_argument("--concurrency", default="1,4,8", help="client counts for throughput")
    ap.add_argument("--requests", type=int, default=24, help="requests per throughput run")
    ap.add_argument("--workers", type=int, default=4, help="AGROSTRESS_API_JOB_WORKERS")
    ap.add_argument("--no-plots", action="store_true", help="AGROSTRESS_API_PLOTS=false")
    ap.add_argument("--processes", type=int, default=0,
                    help="run `agrostress serve --workers N` in a subprocess (0: in this process)")
    ap.add_argument("--torch-threads", type=int, default=None,
                    help="AGROSTRESS_API_TORCH_THREADS (default: as `agrostress serve` sets it)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--baseline", default=None, metavar="REV",
                    help="also run this commit's bench/api.py, same arguments, same session")
    args = ap.parse_args()

    from agrostress.cube import write_geotiff_folder
    from agrostress.ingest.fetch import fetch_cube
    from agrostress.settings import Settings
    from api.app import create_app
    from api.settings import ApiSettings

    tmp = Path(tempfile.mkdtemp(prefix="agrostress-bench-api-"))
    model_dir, model_desc = pick_model(args.model, tmp)
    base = field(0)
    print(f"model: {model_desc}")
    print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}, "
          f"optional plots: {'off' if args.no_plots else 'on'}")
    t0 = time.perf_counter()
    cube = fetch_cube("simulated", base, START, END, max_area_km2=None)
    write_geotiff_folder(cube, tmp / "tiffs")
    print(f"GeoTIFF folder for the files source: {cube.sizes['time']} dates, "
          f"{cube.sizes['y']}x{cube.sizes['x']} px ({time.perf_counter() - t0:.1f} s)")
    settings = Settings(_env_file=None, data_dir=tmp / "data", cache_dir=tmp / "cache",
                        model_dir=model_dir, files_dir=tmp / "tiffs")
    api = ApiSettings(_env_file=None, job_workers=args.workers, max_pending_jobs=1000,
                      sources=["simulated", "files"], sync_timeout_s=900,
                      plots=not args.no_plots)
    api = api.model_copy(update={"torch_threads": args.torch_threads
                                 or api.serving_torch_threads()})
    print(f"torch threads per analysis: {api.torch_threads}")
    srv = (ServeProcess(settings, api, args.processes) if args.processes
           else Server(create_app(settings, api)))
    rows: list[dict[str, Any]] = []

    def record(name: str, lat: list[float]) -> None:
        row = {"scenario": name, "n": len(lat), "p50_s": pct(lat, 0.5), "p95_s": pct(lat, 0.95),
               "mean_s": statistics.fmean(lat)}
        rows.append(row)
        print(f"  {name:<22} n={row['n']:<3} p50 {row['p50_s']:6.2f} s   p95 {row['p95_s']:6.2f} s")

    try:
        print("latency (sequential, one client):")
        record("simulated, cold", [post(srv.url, field(i), "simulated")
                                   for i in range(1, args.cold + 1)])
        for _ in range(1 + 2 * args.processes):  # warm the cache (and every server process)
            post(srv.url, base, "simulated")
        record("simulated, cached", [post(srv.url, base, "simulated") for _ in range(args.n)])
        post(srv.url, base, "simulated", AS_OF)  # the in-season call fetches up to its date
        record(f"in season (as of {AS_OF}), cached",
               [post(srv.url, base, "simulated", AS_OF) for _ in range(args.n)])
        uncached = []
        for _ in range(args.n):
            clear(settings.cache_dir)
            uncached.append(post(srv.url, base, "files"))
        record("files, uncached", uncached)
        record("files, cached", [post(srv.url, base, "files") for _ in range(args.n)])

        print(f"throughput (cached simulated fields, {args.requests} requests, "
              f"{args.workers} job workers):")
        warm = [field(i) for i in range(1, 4)]
        for f in warm:  # (re)fill the cache: the files runs above cleared it
            post(srv.url, f, "simulated")
        for c in (int(x) for x in args.concurrency.split(",")):
            jobs = [warm[i % len(warm)] for i in range(args.requests)]
            t0 = time.perf_counter()
            with ThreadPoolExecutor(c) as pool:
                lat = list(pool.map(lambda f: post(srv.url, f, "simulated"), jobs))
            wall = time.perf_counter() - t0
            row = {"scenario": f"throughput c={c}", "n": len(lat), "p50_s": pct(lat, 0.5),
                   "p95_s": pct(lat, 0.95), "mean_s": statistics.fmean(lat),
                   "per_s": len(lat) / wall, "per_min": 60 * len(lat) / wall}
            rows.append(row)
            print(f"  clients={c:<3} {row['per_s']:5.2f} analyses/s ({row['per_min']:5.1f}/min)  "
                  f"p50 {row['p50_s']:6.2f} s   p95 {row['p95_s']:6.2f} s")
    finally:
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    print("\n| scenario | n | p50 (s) | p95 (s) | analyses/s |\n|---|---|---|---|---|")
    for r in rows:
        per = f"{r['per_s']:.2f}" if "per_s" in r else ""
        print(f"| {r['scenario']} | {r['n']} | {r['p50_s']:.2f} | {r['p95_s']:.2f} | {per} |")
    baseline = None
    if args.baseline:
        from bench.baseline import run_on_commit

        same = ["--n", str(args.n), "--cold", str(args.cold), "--concurrency", args.concurrency,
                "--requests", str(args.requests), "--workers", str(args.workers),
                *(["--model", args.model] if args.model else []),
                *(["--no-plots"] if args.no_plots else [])]
        baseline = run_on_commit(args.baseline, "bench/api.py", same, "--json")
    print_targets(rows, baseline, args.baseline)
    if args.json:
        args.json.write_text(json.dumps({"model": model_desc, "rows": rows, "baseline": (
            {"commit": args.baseline, "rows": baseline["rows"]} if baseline else None)},
            indent=2))


def print_targets(rows: list[dict[str, Any]], baseline: dict[str, Any] | None,
                  rev: str | None) -> None:
    """Each scenario now beside the baseline commit, and the targets (#25): cached p95
    ≤ 0.5 s, cold simulated p95 ≤ 3 s, ≥ 4 analyses/s with 4 clients."""
    before = {r["scenario"]: r for r in (baseline or {}).get("rows", [])}
    head = "| scenario | p50 (s) | p95 (s) | analyses/s |"
    print("\n" + head + (f" p50 at {rev} | p95 at {rev} | analyses/s at {rev} |"
                         if baseline else ""))
    print("|---|---|---|---|" + ("---|---|---|" if baseline else ""))
    for r in rows:
        cells = [r["scenario"], f"{r['p50_s']:.2f}", f"{r['p95_s']:.2f}",
                 f"{r['per_s']:.2f}" if "per_s" in r else ""]
        if baseline:
            b = before.get(r["scenario"])
            cells += ([f"{b['p50_s']:.2f}", f"{b['p95_s']:.2f}",
                       f"{b['per_s']:.2f}" if "per_s" in b else ""] if b else ["–"] * 3)
        print("| " + " | ".join(cells) + " |")
    by = {r["scenario"]: r for r in rows}
    checks = [("simulated, cached", "p95_s", 0.5, "cached p95 ≤ 0.5 s"),
              ("simulated, cold", "p95_s", 3.0, "cold simulated p95 ≤ 3 s")]
    for name, key, limit, label in checks:
        if name in by:
            v = by[name][key]
            print(f"{label}: {v:.2f} s ({'met' if v <= limit else 'not met'})")
    if "throughput c=4" in by:
        v = by["throughput c=4"]["per_s"]
        print(f"≥ 4 analyses/s with 4 clients: {v:.2f} ({'met' if v >= 4 else 'not met'})")


if __name__ == "__main__":
    main()
