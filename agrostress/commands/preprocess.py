"""``agrostress preprocess CUBE --out FEATURES.zarr``: cube → regular feature series."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from agrostress.commands.common import console, progress, user_errors


def register(app: typer.Typer) -> None:
    @app.command("preprocess")
    def preprocess_cmd(
        cube: Path = typer.Argument(..., help="cube: Zarr store or GeoTIFF folder"),
        out: Path = typer.Option(..., "--out", "-o", help="feature store to write (Zarr)"),
        grid: str = typer.Option(
            "60:200:5", "--grid", help="DOY grid, e.g. 60:200:5 = DOY 60 to 200 every 5 days"
        ),
        features: str = typer.Option(
            "ffdnn",
            "--features",
            help="preset (ffdnn, bands, indices, photochemical, all) and/or names, comma-separated",
        ),
        scl_drop: str | None = typer.Option(
            None, "--scl-drop", help="SCL classes to mask, e.g. 0,1,3,8,9,10,11 (default: settings)"
        ),
        dilation: int | None = typer.Option(
            None, "--dilation", help="grow clouds/shadows by N pixels (default: settings)"
        ),
        max_gap: float = typer.Option(30.0, "--max-gap", help="days; wider gaps stay missing"),
        smooth: bool = typer.Option(False, "--smooth/--no-smooth", help="Whittaker smoother"),
        lam: float = typer.Option(10.0, "--lam", help="Whittaker smoothing parameter"),
        min_valid: int = typer.Option(4, "--min-valid", help="fewer valid dates → insufficient"),
        chunk: int = typer.Option(256, "--chunk", help="spatial chunk size (pixels a side)"),
        params: Path | None = typer.Option(
            None, "--params", help="photochemical parameter file (default: the shipped one)"
        ),
        overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing store"),
    ) -> None:
        """Mask clouds, regularise onto a DOY grid, compute indices and LAI/LCC, write Zarr."""
        from agrostress import cube as cube_mod
        from agrostress.preprocess import (
            CloudMaskPolicy,
            FeatureSpec,
            PhotochemicalParams,
            Regularisation,
            TemporalGrid,
            feature_stack,
            write_features,
        )
        from agrostress.settings import get_settings

        with user_errors():
            if out.exists() and not overwrite:
                raise FileExistsError(f"{out} exists (use --overwrite to replace it)")
            settings = get_settings()
            policy = CloudMaskPolicy.parse(
                scl_drop if scl_drop is not None else settings.scl_drop,
                dilation if dilation is not None else settings.cloud_dilation_px,
            )
            spec = FeatureSpec.parse(features)
            tgrid = TemporalGrid.parse(grid)
            reg = Regularisation(
                max_gap=max_gap,
                smoother="whittaker" if smooth else None,
                lam=lam,
                min_valid=min_valid,
            )
            pparams = PhotochemicalParams.load(params) if params else None
            chunks = {"time": -1, "band": -1, "y": chunk, "x": chunk}
            ds = cube_mod.open_cube(cube, chunks={})  # stored chunks, then time/band whole
            ds = ds.chunk(chunks)
            fs = feature_stack(ds, spec, tgrid, policy, regularisation=reg, params=pparams)
            ny, nx = ds.sizes["y"], ds.sizes["x"]
            console.print(
                f"{ds.sizes['time']} dates × {ny}×{nx} px → {len(tgrid)} steps × "
                f"{len(spec)} features ({spec})"
            )
            with progress() as bar, _DaskProgress(bar, "preprocess"):
                write_features(fs, out, overwrite=overwrite)
            done = _summary(out)
            console.print(
                f"[green]✓[/] wrote {out}: {done['pixels']} px, "
                f"{done['insufficient']:.1%} insufficient_data"
            )


def _summary(path: Path) -> dict[str, Any]:
    from agrostress.preprocess import open_features

    fs = open_features(path)
    bad = fs["insufficient_data"].values
    return {"pixels": int(bad.size), "insufficient": float(bad.mean()) if bad.size else 0.0}


class _DaskProgress:
    """Drive a rich progress bar from dask task completions (local schedulers)."""

    def __init__(self, bar: Any, label: str):
        from dask.callbacks import Callback

        outer = self

        class _CB(Callback):  # type: ignore[misc]
            def _start_state(self, dsk: Any, state: Any) -> None:
                total = sum(len(state[k]) for k in ("ready", "waiting", "running"))
                outer.bar.update(outer.task, total=total + len(state.get("finished", ())))

            def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, id: Any) -> None:
                outer.bar.advance(outer.task)

        self.bar = bar
        self.task = bar.add_task(label, total=None)
        self._cb = _CB()

    def __enter__(self) -> _DaskProgress:
        self._cb.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._cb.__exit__(*exc)
