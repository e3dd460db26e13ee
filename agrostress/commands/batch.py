"""``agrostress batch``: map a whole region tile by tile on Dask (resumable, fault tolerant)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from agrostress.commands.common import (
    as_of_option,
    console,
    crop_column_option,
    crop_preset_option,
    device_option,
    min_confidence_option,
    not_wheat_option,
    priors_option,
    wheat_values_option,
)
from agrostress.commands.ingest import SourceName


def register(app: typer.Typer) -> None:
    @app.command("batch")
    def batch_cmd(
        region: Path = typer.Option(
            ..., "--region", help="region polygon(s): GeoJSON or any vector file"
        ),
        start: str = typer.Option(..., "--start", help="first date, YYYY-MM-DD"),
        end: str = typer.Option(..., "--end", help="last date (inclusive), YYYY-MM-DD"),
        source: SourceName = typer.Option(..., "--source", help="where the data come from"),
        out: Path = typer.Option(..., "--out", help="output folder (mosaics, tiles, manifest)"),
        model: Path | None = typer.Option(
            None, "--model", help="model checkpoint folder (default: AGROSTRESS_MODEL_DIR)"
        ),
        explain: bool = typer.Option(False, "--explain", help="also compute attributions"),
        tile_size: int = typer.Option(
            256, "--tile-size", min=8, max=4096, help="tile side in 10 m pixels"
        ),
        workers: int | None = typer.Option(
            None,
            "--workers",
            min=0,
            help="local Dask worker processes (default: cores, at most 4; 0: in this process)",
        ),
        scheduler: str | None = typer.Option(
            None, "--scheduler", help="address of a running Dask scheduler, tcp://HOST:PORT"
        ),
        fields: Path | None = typer.Option(
            None, "--fields", help="field / zone polygons: statistics table per polygon"
        ),
        retries: int = typer.Option(
            2, "--retries", min=0, max=20, help="retries of a failing tile before it is failed"
        ),
        force: bool = typer.Option(
            False, "--force", help="start over when --out holds a run of another request"
        ),
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
        region_crs: str | None = typer.Option(
            None, "--region-crs", help="CRS of the region file when it does not say"
        ),
        priors: str | None = priors_option(),
        min_confidence: float | None = min_confidence_option(),
        as_of: str | None = as_of_option(),
        crop_column: str | None = crop_column_option(),
        wheat_values: str | None = wheat_values_option(),
        crop_preset: str | None = crop_preset_option(),
        not_wheat: bool = not_wheat_option(),
        device: str = device_option(),
    ) -> None:
        """Map a region: tiles on a UTM grid, one Dask task per tile, mosaics + manifest.

        Re-running the same command resumes: completed tiles are skipped, missing or failed
        ones are redone. Exit codes: 0 all tiles done, 1 some tiles failed (re-run to retry
        them), 2 bad input, 130 interrupted.
        """
        from agrostress.analysis.crops import crop_selection
        from agrostress.batch import BatchError, run_batch
        from agrostress.decision import parse_priors
        from agrostress.ingest import IngestError
        from agrostress.settings import get_settings

        if workers is not None and scheduler:
            _fail("give either --workers or --scheduler, not both")
        try:
            crops = crop_selection(crop_preset, crop_column, wheat_values)
        except ValueError as e:
            _fail(str(e))
        if crops is not None and fields is None:
            _fail("--crop-column / --wheat-values / --crop-preset need the parcels: give --fields")
        if scheduler is None:  # local workers: the device must exist here (else: on them)
            from agrostress.models.device import DeviceError, resolve_device

            try:
                resolve_device(device)
            except DeviceError as e:
                _fail(str(e))
        settings = get_settings()
        update: dict[str, Any] = {}
        if input_dir is not None:
            update["files_dir"] = input_dir.resolve()
        if stac_url is not None:
            update["stac_url"] = stac_url
        if collection is not None:
            update["stac_collection"] = collection
        if profile is not None:
            if profile not in ("sentinelhub", "cdse"):
                _fail(f"unknown profile {profile!r} (sentinelhub, cdse)")
            update["sh_profile"] = profile
        if priors is not None:
            try:
                parse_priors(priors)
            except ValueError as e:
                _fail(str(e))
            update["priors"] = priors
        if min_confidence is not None:
            update["min_confidence"] = min_confidence
        if update:
            settings = settings.model_copy(update=update)
        display = _Display()
        try:
            with display:
                manifest = run_batch(
                    region,
                    start,
                    end,
                    source.value,
                    out,
                    model,
                    fields=fields,
                    explain=explain,
                    tile_size=tile_size,
                    workers=workers,
                    scheduler=scheduler,
                    retries=retries,
                    force=force,
                    settings=settings,
                    region_crs=region_crs,
                    progress=display.update,
                    device=device,
                    as_of=as_of,
                    crops=crops,
                    not_wheat=not_wheat,
                )
        except KeyboardInterrupt:
            console.print(
                "[yellow]interrupted:[/] completed tiles are kept; re-run the same command "
                "to resume"
            )
            raise typer.Exit(code=130) from None
        except (IngestError, BatchError, ValueError, FileNotFoundError, OSError) as e:
            _fail(str(e) if not isinstance(e, IngestError) else f"({type(e).__name__}) {e}")
        _summary(manifest)
        if not manifest.complete:
            console.print(
                f"[yellow]{manifest.counts()['failed']} tile(s) failed[/]: see "
                f"{manifest.path}; re-run the same command to retry them"
            )
            raise typer.Exit(code=1)


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=2)


class _Display:
    """A rich progress bar: tiles done/total, failed, km²/h and ETA from the area rate."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.bar = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("tiles"),
            TextColumn("{task.fields[failed]}"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("{task.fields[eta]}"),
            console=console,
            transient=False,
        )
        self.task: Any = None

    def __enter__(self) -> _Display:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)  # type: ignore[arg-type]

    def update(self, p: Any) -> None:
        if self.task is None:
            self.task = self.bar.add_task("tiles", total=p.total, failed="", rate="", eta="")
        rate = f"{p.km2_per_hour:,.1f} km²/h" if p.km2_done > 0 else ""
        eta = p.eta_s
        labels = {"mosaic": "mosaic", "stats": "statistics", "end": "done"}
        self.bar.update(
            self.task,
            completed=p.done + p.failed,
            total=p.total,
            description=labels.get(p.stage, "tiles"),
            failed=f"[red]{p.failed} failed[/]" if p.failed else "",
            rate=rate,
            eta=f"ETA {_duration(eta)}" if eta is not None and p.stage == "tile" else "",
        )


def _duration(seconds: float) -> str:
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _summary(manifest: Any) -> None:
    from rich.table import Table

    from agrostress.batch.run import stage_shares

    run = manifest.runs[-1]
    summary = manifest.summary
    t = Table(title="batch summary", show_header=False)
    t.add_column("", style="bold")
    t.add_column("")
    c = manifest.counts()
    t.add_row("tiles", f"{summary['tiles']} ({c['done']} done, {c['failed']} failed)")
    t.add_row("this run", f"{run['computed']} computed, {run['skipped']} skipped, "
              f"{run['retried']} retried on {run.get('workers') or 0} worker(s)")  # fmt: skip
    t.add_row("region", f"{summary['region_km2']:,.2f} km² in EPSG " + ", ".join(
        str(z) for z in summary["zones"]))  # fmt: skip
    t.add_row("time", _duration(run.get("tiles_s") or 0.0))
    if run.get("km2_per_hour"):
        t.add_row("throughput", f"{run['km2_per_hour']:,.1f} km²/h")
    shares = stage_shares(run.get("stage_seconds") or {})
    if shares:
        t.add_row("stages", ", ".join(f"{k} {v:.0%}" for k, v in shares.items()))
    ha = summary.get("hectares") or {}
    if ha:
        t.add_row("hectares", ", ".join(f"{k} {v:,.1f}" for k, v in ha.items()))
    files = (manifest.outputs or {}).get("files") or {}
    if files:
        t.add_row("outputs", "\n".join(sorted(files.values())))
    t.add_row("manifest", str(manifest.path))
    for rec in manifest.by_status("failed")[:10]:
        t.add_row(f"[red]failed {rec.id}[/]", str(rec.error))
    console.print(t)
