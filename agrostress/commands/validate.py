"""``agrostress validate CUBE``: check a cube against the contract."""

from __future__ import annotations

from pathlib import Path

import typer

from agrostress.commands.common import console


def register(app: typer.Typer) -> None:
    @app.command("validate")
    def validate_cmd(
        cube: Path = typer.Argument(..., help="Zarr store or GeoTIFF folder"),
        labels: bool = typer.Option(False, "--labels", help="require a label layer"),
    ) -> None:
        """Check a cube against the contract and name every problem."""
        from agrostress import cube as cube_mod

        try:
            ds = cube_mod.open_cube(cube)
            cube_mod.validate(ds, require_labels=labels)
        except cube_mod.CubeError as e:
            for p in e.problems:
                console.print(f"[red]✗[/] {p}")
            raise typer.Exit(code=1) from e
        except FileNotFoundError as e:
            console.print(f"[red]error:[/] {e}")
            raise typer.Exit(code=2) from e
        console.print(
            f"[green]✓[/] valid cube: {ds.sizes['time']} dates × {ds.sizes['y']}×{ds.sizes['x']} px"
        )
