"""``agrostress train``: train a model of the zoo on labelled cubes."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from agrostress.commands.common import console, progress, user_errors


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train_cmd(
        model: str = typer.Option("ffdnn", "--model", help="model name (see --list)"),
        cube: list[Path] = typer.Option(None, "--cube", help="labelled training cube (repeat)"),
        out: Path = typer.Option(None, "--out", help="checkpoint folder to write"),
        features: str = typer.Option("ffdnn", "--features", help="feature spec or preset"),
        grid: str = typer.Option("60:200:5", "--grid", help="DOY START:END:STEP"),
        epochs: int = typer.Option(40, "--epochs", min=1),
        batch_size: int = typer.Option(512, "--batch-size", min=8),
        lr: float = typer.Option(3e-3, "--lr"),
        patience: int = typer.Option(8, "--patience", min=1),
        seed: int = typer.Option(0, "--seed"),
        config: str = typer.Option("{}", "--config", help="model config as JSON"),
        max_pixels: int = typer.Option(0, "--max-pixels-per-cube", help="subsample (0 = all)"),
        list_models: bool = typer.Option(False, "--list", help="list model names and exit"),
        reference_draws: int = typer.Option(
            4, "--reference-draws", min=1,
            help="reference draws per cube for models with a reference (config reference: true)"),
        time_shift: int = typer.Option(2, "--time-shift", min=0, help="± grid steps of jitter"),
        scene_jitter: float = typer.Option(
            0.0, "--scene-jitter", min=0.0,
            help="per-date offsets shared by pixel and reference (normalised units)"),
    ) -> None:
        """Train MODEL on labelled cubes; validation is split by field, never by pixel."""
        from agrostress import models
        from agrostress.training import TrainConfig, load_training_data, train_model

        if list_models:
            for name in [*models.list_models(), "random_forest"]:
                console.print(name)
            return
        with user_errors():
            if not cube or out is None:
                raise ValueError("--cube (at least one) and --out are required")
            if model != "random_forest" and model not in models.list_models():
                raise ValueError(f"unknown model {model!r}; see `agrostress train --list`")
            model_config = json.loads(config)
            if not isinstance(model_config, dict):
                raise ValueError("--config must be a JSON object")
            context = int(model_config.get("context", 2 if model == "spatiotemporal" else 0))
            with progress() as bar:
                task = bar.add_task("features", total=len(cube))
                data = load_training_data(
                    list(cube), features, grid, context=context,
                    max_pixels_per_cube=max_pixels or None, seed=seed,
                    progress=lambda d, t: bar.update(task, completed=d),
                    reference_draws=reference_draws if model_config.get("reference") else 0,
                )
            console.print(f"{len(data.y):,} pixels from {len(cube)} cube(s), "
                          f"{len(set(data.field_key.tolist()))} fields")
            cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, patience=patience,
                              seed=seed, model_config=model_config, time_shift=time_shift,
                              scene_jitter=scene_jitter)
            with progress() as bar:
                task = bar.add_task(f"training {model}", total=epochs)

                def on_epoch(epoch: int, row: dict) -> None:
                    bar.update(task, completed=epoch + 1,
                               description=f"training {model} val F1 {row['val_macro_f1']:.3f}")

                loaded, history = train_model(model, data, cfg, on_epoch=on_epoch)
            models.save(loaded.module, loaded.card, out)
            best = history["best"]
            console.print(f"[green]✓[/] {out}: best epoch {best['epoch']}, "
                          f"validation macro-F1 {best['val_macro_f1']:.3f}")
