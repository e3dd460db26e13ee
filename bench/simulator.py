"""Simulator throughput: pixel-series per second, fast path vs the per-pixel prosail baseline.

    python bench/simulator.py [--size 128] [--fields 12]

Prints a table and writes bench/results/simulator.json. The baseline calls
``prosail.run_prosail`` once per pixel and date (measured on a sample, extrapolated per series).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import prosail
from rich.console import Console
from rich.table import Table

from agrostress.simulate import SimulationConfig, simulate_scene


def baseline_series_per_s(n_dates: int, samples: int = 200) -> float:
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(samples):
        prosail.run_prosail(
            rng.uniform(1.4, 1.7), rng.uniform(30, 60), 10.0, 0.0, 0.015, 0.005, 5.0, 0.5,
            rng.uniform(1, 6), 60.0, 0.1, 40.0, 5.0, 60.0, rsoil=1.0, psoil=0.5,
        )
    per_call = (time.perf_counter() - t0) / samples
    return 1.0 / (per_call * n_dates)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--fields", type=int, default=12)
    args = ap.parse_args()
    simulate_scene(SimulationConfig(fields=3, size=32, seed=0))  # compile / warm caches
    cfg = SimulationConfig(fields=args.fields, size=args.size, seed=1)
    t0 = time.perf_counter()
    ds, _ = simulate_scene(cfg)
    dt = time.perf_counter() - t0
    n_series = args.size**2
    ours = n_series / dt
    base = baseline_series_per_s(ds.sizes["time"])
    table = Table(title=f"simulator throughput ({args.size}×{args.size} px, {ds.sizes['time']} dates)")
    for col in ("path", "pixel-series/s", "pixel-dates/s", "scene time (s)", "speed-up"):
        table.add_column(col, justify="right")
    table.add_row("agrostress (numba PROSPECT-D + 4SAIL)", f"{ours:,.0f}",
                  f"{ours * ds.sizes['time']:,.0f}", f"{dt:.1f}", f"{ours / base:.0f}×")
    table.add_row("prosail.run_prosail per pixel & date", f"{base:,.1f}",
                  f"{base * ds.sizes['time']:,.0f}", f"{n_series / base:.0f}", "1×")
    Console().print(table)
    out = Path(__file__).parent / "results" / "simulator.json"
    out.write_text(json.dumps({"size": args.size, "dates": ds.sizes["time"], "seconds": dt,
                               "series_per_s": ours, "baseline_series_per_s": base}, indent=2))


if __name__ == "__main__":
    main()
