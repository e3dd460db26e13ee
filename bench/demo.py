"""Time the demo (``agrostress demo``) stage by stage: wall clock and CPU seconds.

    python bench/demo.py [--model models/ffdnn] [--threads 1] [--repeat 1]

CPU seconds are printed beside wall seconds because the development machine is shared: on a
busy machine the wall clock overstates what the demo costs.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args(argv)

    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import agrostress.analysis, agrostress.outputs.render"],
                   check=True)
    cold_import = time.perf_counter() - t

    rows: list[tuple[str, float, float]] = []
    c, t = cpu(), time.perf_counter()
    import torch

    from agrostress import analysis
    from agrostress.cube import open_cube
    from agrostress.models import load
    from agrostress.settings import get_settings

    rows.append(("imports (this process)", time.perf_counter() - t, cpu() - c))
    torch.set_num_threads(args.threads)
    for run in range(args.repeat):
        c, t = cpu(), time.perf_counter()
        model = load(args.model or get_settings().model_dir)
        rows.append((f"[{run}] model load", time.perf_counter() - t, cpu() - c))
        c, t = cpu(), time.perf_counter()
        cube = open_cube(analysis.SAMPLE_SCENE) if analysis.SAMPLE_SCENE.exists() else None
        rows.append((f"[{run}] sample scene open", time.perf_counter() - t, cpu() - c))
        with tempfile.TemporaryDirectory() as tmp:
            c, t = cpu(), time.perf_counter()
            report = analysis.run_demo(Path(tmp) / "demo", model, cube=cube)
            total_w, total_c = time.perf_counter() - t, cpu() - c
        for k, v in report.result.timings.items():
            if k != "total":
                rows.append((f"[{run}]   analyse: {k}", v, float("nan")))
        rows.append((f"[{run}] analyse (all)", report.timings["analyse"], float("nan")))
        rows.append((f"[{run}] write files", report.timings["write"], float("nan")))
        rows.append((f"[{run}] run_demo total", total_w, total_c))
        ok = sum(r["correct"] for r in report.rows)
        print(f"run {run}: {ok}/{len(report.rows)} fields agree with the simulated truth")

    load1 = os.getloadavg()[0]
    print(f"\ncold `import agrostress.analysis` in a fresh interpreter: {cold_import:.1f} s wall")
    print(f"torch threads {args.threads}; load average (1 min) {load1:.1f} on "
          f"{os.cpu_count()} CPUs\n")
    print(f"{'stage':<32} {'wall s':>8} {'CPU s':>8}")
    for name, w, c_ in rows:
        cs = "" if c_ != c_ else f"{c_:8.2f}"
        print(f"{name:<32} {w:8.2f} {cs:>8}")


if __name__ == "__main__":
    main()
