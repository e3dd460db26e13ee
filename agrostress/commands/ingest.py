"""``agrostress ingest``: fetch Sentinel-2 L2A for an AOI into a validated Zarr cube."""

from __future__ import annotations

import enum
from pathlib import Path

import typer

from agrostress.commands.common import console, progress, user_errors

EXIT_CODES = {
    "AOIError": 2,
    "SourceConfigError": 2,
    "CredentialsError": 3,
    "EmptyCatalogueError": 4,
    "CoverageError": 4,
    "UpstreamError": 5,
}


class SourceName(enum.StrEnum):
    sentinelhub = "sentinelhub"
    stac = "stac"
    files = "files"
    simulated = "simulated"


def register(app: typer.Typer) -> None:
    @app.command("ingest")
    def ingest_cmd(
        source: SourceName = typer.Option(..., "--source", help="where the data come from"),
        aoi: Path = typer.Option(..., "--aoi", help="AOI polygon (GeoJSON or any vector file)"),
        start: str = typer.Option(..., "--start", help="first date, YYYY-MM-DD"),
        end: str = typer.Option(..., "--end", help="last date (inclusive), YYYY-MM-DD"),
        out: Path = typer.Option(..., "--out", help="output Zarr cube"),
        cache: Path | None = typer.Option(
            None,
            "--cache",
            help="cache folder (default: AGROSTRESS_CACHE_DIR, else <AGROSTRESS_DATA_DIR>/cache)",
        ),
        no_cache: bool = typer.Option(False, "--no-cache", help="neither read nor fill a cache"),
        input_dir: Path | None = typer.Option(
            None, "--input", help="folder of GeoTIFFs for --source files"
        ),
        stac_url: str | None = typer.Option(
            None, "--stac-url", help="STAC API / static catalog URL for --source stac"
        ),
        collection: str | None = typer.Option(None, "--collection", help="STAC collection id"),
        profile: str | None = typer.Option(
            None, "--profile", help="Sentinel Hub profile: sentinelhub or cdse"
        ),
        aoi_crs: str | None = typer.Option(
            None, "--aoi-crs", help="CRS of the AOI file when it does not say (e.g. EPSG:32631)"
        ),
        max_area: float | None = typer.Option(
            None,
            "--max-area-km2",
            help="largest accepted AOI in km² (default: AGROSTRESS_INGEST_MAX_AREA_KM2, 100)",
        ),
        overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing --out"),
    ) -> None:
        """Fetch Sentinel-2 L2A over an AOI and write a cube that passes `validate`."""
        from agrostress.ingest import IngestError
        from agrostress.ingest.fetch import ingest
        from agrostress.settings import get_settings

        settings = get_settings()
        update: dict[str, object] = {}
        if input_dir is not None:
            update["files_dir"] = input_dir
        if stac_url is not None:
            update["stac_url"] = stac_url
        if collection is not None:
            update["stac_collection"] = collection
        if profile is not None:
            if profile not in ("sentinelhub", "cdse"):
                console.print(
                    f"[bold red]error:[/] unknown profile {profile!r} (sentinelhub, cdse)"
                )
                raise typer.Exit(code=2)
            update["sh_profile"] = profile
        if update:
            settings = settings.model_copy(update=update)
        cache_dir = None if no_cache else (cache or settings.ingest_cache_dir())
        with user_errors():
            try:
                with progress() as bar:
                    tasks: dict[str, int] = {}

                    def on_progress(stage: str, done: int, total: int) -> None:
                        if stage not in tasks:
                            tasks[stage] = bar.add_task(stage, total=total)
                        bar.update(tasks[stage], completed=done, total=total)

                    path = ingest(
                        source.value,
                        aoi,
                        start,
                        end,
                        out,
                        cache_dir=cache_dir,
                        settings=settings,
                        progress=on_progress,
                        overwrite=overwrite,
                        max_area_km2=max_area if max_area is not None else True,
                        aoi_crs=aoi_crs,
                    )
            except IngestError as e:
                code = EXIT_CODES.get(type(e).__name__, 1)
                console.print(f"[bold red]error ({type(e).__name__}):[/] {e}")
                raise typer.Exit(code=code) from e
        from agrostress.cube import read_zarr

        ds = read_zarr(path)
        console.print(
            f"[green]✓[/] {path}: {ds.sizes['time']} dates × {ds.sizes['y']}×{ds.sizes['x']} px "
            f"(EPSG:{ds.attrs.get('aoi_epsg', '?')}, source {source.value})"
        )
