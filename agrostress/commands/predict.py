"""``agrostress predict``: stress maps (COG + PNG), field summary and explanations for a cube."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from agrostress.commands.common import (
    as_of_option,
    console,
    crop_column_option,
    crop_preset_option,
    decision_policy,
    device_option,
    min_confidence_option,
    not_wheat_option,
    priors_option,
    progress,
    user_errors,
    wheat_values_option,
)


def register(app: typer.Typer) -> None:
    @app.command("predict")
    def predict_cmd(
        cube: Path = typer.Option(..., "--cube", help="cube: Zarr store or GeoTIFF folder"),
        out: Path = typer.Option(..., "--out", "-o", help="output folder (written atomically)"),
        model: Path | None = typer.Option(
            None, "--model", help="model checkpoint folder (default: settings model_dir)"
        ),
        fields: Path | None = typer.Option(
            None, "--fields", help="field polygons (GeoJSON, GeoPackage, …; any CRS)"
        ),
        explain: bool = typer.Option(False, "--explain", help="captum attributions + evidence"),
        method: str = typer.Option(
            "ig", "--method", help="ig | saliency | gradientshap | occlusion"
        ),
        explain_pixels: int = typer.Option(
            32, "--explain-pixels", min=1, help="pixels explained per field (or per class)"
        ),
        ig_steps: int = typer.Option(24, "--ig-steps", min=2, help="Integrated Gradients steps"),
        seed: int = typer.Option(0, "--seed", min=0, help="seed of the explained-pixel sample"),
        tile: int = typer.Option(256, "--tile", min=8, help="tile side in pixels (streaming)"),
        plots: bool = typer.Option(True, "--plots/--no-plots", help="extra PNGs"),
        overwrite: bool = typer.Option(False, "--overwrite", help="replace an earlier output"),
        threads: int | None = typer.Option(
            None, "--threads", min=1, help="torch threads (default: torch's choice)"
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
        """Classify every pixel of CUBE, summarise per field, write COGs, PNGs and JSON."""
        from agrostress import analysis
        from agrostress.analysis.crops import crop_selection
        from agrostress.analysis.not_wheat import NotWheatDetector
        from agrostress.cube import open_cube
        from agrostress.explain import ExplainConfig, check_method
        from agrostress.models import load
        from agrostress.outputs import check_out_dir
        from agrostress.outputs.summary import field_entries
        from agrostress.settings import get_settings

        with user_errors():
            if threads:
                import torch

                torch.set_num_threads(threads)
            check_out_dir(out, overwrite=overwrite)
            method = check_method(method)
            settings = get_settings()
            loaded = load(model or settings.model_dir).to(device)
            decision = decision_policy(priors, min_confidence)
            crops = crop_selection(crop_preset, crop_column, wheat_values)
            if crops is not None and fields is None:
                raise ValueError("--crop-column / --wheat-values / --crop-preset need the "
                                 "parcels: give --fields")
            detector = NotWheatDetector.from_settings(settings, not_wheat and crops is None)
            ds = open_cube(cube, chunks={})  # lazy where the store allows: streamed by tile
            gdf = analysis.read_fields(fields) if fields is not None else None
            with progress() as bar:
                task = bar.add_task("analyse (tiles)", total=None)
                result = analysis.analyse(
                    ds, loaded, fields=gdf, explain=explain, method=method, tile=tile,
                    explain_pixels=explain_pixels, seed=seed,
                    explain_config=ExplainConfig(ig_steps=ig_steps), decision=decision,
                    as_of=as_of, crops=crops, not_wheat=detector,
                    progress=lambda d, n: bar.update(task, completed=d, total=n),
                )
            paths = analysis.write_outputs(result, out, overwrite=overwrite, plots=plots)
            print_fields(field_entries(result))
            print_paths(paths, result)


def print_fields(rows: list[dict[str, Any]], *, title: str = "fields") -> None:
    from rich.table import Table

    if not rows:
        return
    has_truth = any(r.get("true_label") for r in rows)
    table = Table(title=title)
    table.add_column("field", justify="right")
    if has_truth:
        table.add_column("true label")
    table.add_column("call")
    table.add_column("confidence", justify="right")
    since = any("call_since" in r for r in rows)
    if since:
        table.add_column("since")
    table.add_column("valid px", justify="right")
    table.add_column("area ha", justify="right")
    for r in rows:
        call = r.get("call") or "— (too little data)"
        truth = r.get("true_label") or "—"
        mark = ""
        if has_truth and r.get("true_label") and r.get("call"):
            mark = " ✓" if r["call"] == r["true_label"] else " ✗"
        conf = f"{r['confidence']:.2f}" if r.get("confidence") is not None else "—"
        cells = [str(r["field_id"])] + ([truth] if has_truth else []) + [
            call.replace("_", " ") + mark, conf,
            *([r.get("call_since") or "—"] if since else []),
            f"{100 * r['valid_pixel_share']:.0f} %",
            f"{r['area_ha']:.2f}",
        ]
        table.add_row(*[c.replace("_", " ") for c in cells])
    console.print(table)


def print_paths(paths: dict[str, Path], result: Any) -> None:
    t = result.totals["hectares"]
    parts = ", ".join(f"{n.replace('_', ' ')} {t[n]:.1f} ha" for n in result.class_names)
    console.print(f"scene: {parts}, uncertain {t.get('uncertain', 0.0):.1f} ha, "
                  f"too early {t.get('too_early', 0.0):.1f} ha, "
                  + (f"not wheat {t['not_wheat']:.1f} ha, " if t.get("not_wheat") else "")
                  + f"no data {t['nodata']:.1f} ha of {t['total']:.1f} ha")
    if result.attributions:
        c = result.attributions.completeness
        if c.get("passed") is not None:
            console.print(
                f"IG completeness: max |Σ attributions − Δp| = {c['max_abs_delta']:.2e} over "
                f"{c['pixels']} pixels (tolerance {c['tolerance']}): "
                + ("[green]passed[/]" if c["passed"] else "[red]failed[/]")
            )
    folder = next(iter(paths.values())).parent if paths else None
    console.print(f"[green]✓[/] wrote {len(paths)} files to {folder}:")
    for name, p in paths.items():
        console.print(f"  {p.name:<28} {name}")
