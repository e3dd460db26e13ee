"""The demo: the embedded sample scene (or a simulated one) through the whole core path."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from agrostress.analysis.core import analyse
from agrostress.analysis.outputs import write_outputs
from agrostress.analysis.result import AnalysisResult
from agrostress.decision import (
    DecisionPolicy,
)
from agrostress.explain import (
    ExplainConfig,
)

DEMO_SEED = 5
"""Seed of the demo scene: independent of the shipped model's training (1000–1009) and test
(2000–2003) seeds; see ``data/README.md`` for how it was chosen."""
SAMPLE_SCENE = Path(__file__).resolve().parents[2] / "data" / "sample_scene.zarr"
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
            "field_id": f.field_id,
            "true_label": f.true_label,
            "call": f.call,
            "confidence": f.confidence,
            "valid_pixel_share": f.valid_pixel_share,
            "area_ha": f.area_ha,
            "correct": bool(f.true_label and f.call == f.true_label),
        }
        for f in result.fields
    ]
    return DemoReport(result=result, paths=paths, timings=timings, scene=scene, rows=rows)
