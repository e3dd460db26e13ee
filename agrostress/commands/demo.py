"""``agrostress demo``: the whole product on a small region, offline, in under a minute."""

from __future__ import annotations

from pathlib import Path

import typer

from agrostress.commands.common import console, user_errors


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo_cmd(
        out: Path = typer.Option(Path("agrostress-demo"), "--out", "-o", help="output folder"),
        model: Path | None = typer.Option(
            None, "--model", help="model checkpoint (default: the shipped one, settings model_dir)"
        ),
        cube: Path | None = typer.Option(
            None, "--cube", help="analyse this cube instead of the embedded sample scene"
        ),
        simulate: bool = typer.Option(
            False, "--simulate", help="simulate the scene now instead of loading data/ sample"
        ),
        seed: int | None = typer.Option(
            None, "--seed", min=0, help="simulate a scene with this seed (implies --simulate)"
        ),
        size: int = typer.Option(64, "--size", min=32, max=512, help="simulated scene side (px)"),
        n_fields: int = typer.Option(9, "--fields", min=3, max=60, help="simulated fields"),
        explain: bool = typer.Option(True, "--explain/--no-explain", help="captum attributions"),
        method: str = typer.Option("ig", "--method", help="ig | saliency | gradientshap | occlusion"),
        explain_pixels: int = typer.Option(24, "--explain-pixels", min=1, help="per field"),
        threads: int = typer.Option(
            1, "--threads", min=1,
            help="torch threads; 1 suits the small demo and busy machines best",
        ),
        write_sample: Path | None = typer.Option(
            None, "--write-sample", help="write the demo scene as a compact Zarr and exit"
        ),
        priors: str = typer.Option(
            "training", "--priors",
            help="class priors; the demo scene has equal numbers of each class, hence the "
            "training prior (default | healthy=…,nitrogen_deficiency=…,yellow_rust=… for a "
            "real region)"),
    ) -> None:
        """Simulated region → shipped model → maps, explanations, plots, per-field table."""
        import time

        t0 = time.perf_counter()
        from agrostress import analysis
        from agrostress.commands.predict import print_fields, print_paths
        from agrostress.settings import get_settings

        with user_errors():
            if write_sample is not None:
                path = analysis.write_sample_scene(
                    write_sample, seed=analysis.DEMO_SEED if seed is None else seed, size=size,
                    fields=n_fields,
                )
                console.print(f"[green]✓[/] wrote {path} ({_size_mb(path):.2f} MB)")
                return
            import torch

            from agrostress.cube import open_cube
            from agrostress.decision import policy_from
            from agrostress.models import load

            torch.set_num_threads(threads)

            model_dir = model or get_settings().model_dir
            if not (Path(model_dir) / "card.json").is_file():
                raise FileNotFoundError(
                    f"no model checkpoint at {model_dir}: train the shipped default with "
                    "`python -m pipelines.train_default` or pass --model DIR"
                )
            loaded = load(model_dir)
            settings = get_settings()
            decision = policy_from(priors, settings.min_confidence, settings.max_ood)
            if cube is not None:
                ds, scene = open_cube(cube), f"cube {cube}"
            elif seed is None and not simulate and analysis.SAMPLE_SCENE.exists():
                ds = open_cube(analysis.SAMPLE_SCENE)
                scene = f"embedded sample scene {analysis.SAMPLE_SCENE.name} " \
                        f"({ds.sizes['y']}×{ds.sizes['x']} px, {ds.sizes['time']} dates)"
            else:
                ds, scene = None, None
            with console.status("running the demo…") as status:
                report = analysis.run_demo(
                    out, loaded, cube=ds, seed=analysis.DEMO_SEED if seed is None else seed,
                    size=size, fields=n_fields, explain=explain, method=method,
                    explain_pixels=explain_pixels, decision=decision,
                    progress=lambda stage, d, n: status.update(f"demo: {stage} {d}/{n}"),
                )
            total = time.perf_counter() - t0
            console.print(f"scene: {scene or report.scene}; model {loaded.card.name} "
                          f"v{loaded.card.version} ({loaded.card.architecture})")
            print_fields(report.rows, title="demo fields: truth vs call")
            acc = report.field_accuracy
            if acc is not None:
                console.print(f"field-level agreement with the simulated truth: {acc:.0%} "
                              "(an 'uncertain' call counts as a disagreement)")
            used = report.result.meta["decision"]["priors"]
            console.print("priors: " + ", ".join(f"{k.replace('_', ' ')} {v:.2f}"
                                                 for k, v in used.items())
                          + f" ({priors}); wheat reference: {_reference(report.result.meta)}")
            print_paths(report.paths, report.result)
            t = report.timings
            console.print(
                f"time: {total:.1f} s in all (scene {t['scene']:.1f} s, analysis "
                f"{t['analyse']:.1f} s, files {t['write']:.1f} s; the rest is start-up)"
            )
            console.print(f"open {out / 'stress_map.png'} first, or {out / 'stress_map.tif'} "
                          "in QGIS (its style stress_map.qml loads with it)")


def _reference(meta: dict) -> str:
    ref = meta.get("reference")
    if not ref:
        return "none (the model reads pixels alone)"
    return f"{ref['source']} ({ref['pixels']} px from {ref['fields']} {ref['counted_as']})"


def _size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file()) / 1e6
