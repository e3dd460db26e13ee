"""``agrostress simulate``: write a labelled, simulated Sentinel-2 scene."""

from __future__ import annotations

import json
import time
from enum import StrEnum
from pathlib import Path

import typer

from agrostress.commands.common import console, user_errors


class DifficultyChoice(StrEnum):
    easy = "easy"
    benchmark = "benchmark"
    hard = "hard"


def register(app: typer.Typer) -> None:
    @app.command("simulate")
    def simulate_cmd(
        out: Path = typer.Option(..., "--out", help="output Zarr store (fields.geojson inside)"),
        fields: int = typer.Option(12, "--fields", min=1, max=500, help="number of wheat fields"),
        size: int = typer.Option(128, "--size", min=16, max=4096, help="scene side in 10 m pixels"),
        year: int = typer.Option(2024, "--year", min=2016, max=2100),
        seed: int = typer.Option(0, "--seed", min=0),
        difficulty: DifficultyChoice = typer.Option(DifficultyChoice.benchmark, "--difficulty"),
        epsg: int = typer.Option(32631, "--epsg", help="UTM EPSG code of the scene grid"),
        latitude: float | None = typer.Option(
            None, "--latitude", min=35.0, max=65.0,
            help="°N of the scene (phenology follows it); default: drawn in 40–57 °N"),
    ) -> None:
        """Simulate wheat fields (healthy, N-deficient, yellow rust) as an L2A cube."""
        from agrostress.simulate import SimulationConfig, simulate_scene, write_scene

        with user_errors():
            config = SimulationConfig(
                fields=fields, size=size, year=year, seed=seed,
                difficulty=difficulty.value, epsg=epsg, latitude=latitude,
            )
            t0 = time.perf_counter()
            with console.status(f"simulating {size}×{size} px, {fields} fields…"):
                ds, gdf = simulate_scene(config)
                write_scene(ds, gdf, out)
            counts = gdf["class_name"].value_counts().to_dict()
            domain = json.loads(ds.attrs["domain"])
            console.print(
                f"[green]✓[/] {out}: {ds.sizes['time']} dates × {size}×{size} px, "
                f"fields {counts}, {domain['latitude']:.1f} °N, {domain['weather']} season, "
                f"{time.perf_counter() - t0:.1f} s"
            )
