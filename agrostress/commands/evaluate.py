"""``agrostress evaluate``: pixel- and field-level metrics of a model on labelled cubes."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from agrostress.commands.common import console, user_errors


def register(app: typer.Typer) -> None:
    @app.command("evaluate")
    def evaluate_cmd(
        model: Path = typer.Option(..., "--model", help="checkpoint folder"),
        cube: list[Path] = typer.Option(..., "--cube", help="labelled test cube (repeat)"),
        json_out: Path = typer.Option(None, "--json", help="write the metrics as JSON"),
        field_rule: str = typer.Option("mean_probability", "--field-rule",
                                       help="mean_probability | majority"),
    ) -> None:
        """Evaluate a model: OA, kappa, macro-F1, per class, confusion, ECE; pixel and field."""
        from agrostress.atomic import atomic_path
        from agrostress.models import load
        from agrostress.training import evaluate_model

        with user_errors():
            loaded = load(model)
            report = evaluate_model(loaded, list(cube), field_rule=field_rule)
        names = list(loaded.card.class_names)
        table = Table(title=f"{loaded.card.name} on {len(cube)} cube(s)")
        table.add_column("metric")
        table.add_column("pixel", justify="right")
        table.add_column("field", justify="right")
        for key in ("n", "overall_accuracy", "kappa", "macro_f1", "ece"):
            p, f = report["pixel"][key], report["field"][key]
            fmt = (lambda v: f"{v:,}") if key == "n" else (lambda v: f"{v:.3f}")
            table.add_row(key, fmt(p), fmt(f))
        for name in names:
            table.add_row(f"F1 {name}", f"{report['pixel']['per_class'][name]['f1']:.3f}",
                          f"{report['field']['per_class'][name]['f1']:.3f}")
        console.print(table)
        console.print("confusion (rows = truth, cols = call; " + ", ".join(names) + ")")
        console.print(f"  pixel {report['pixel']['confusion']}")
        console.print(f"  field {report['field']['confusion']}")
        console.print(f"insufficient data (not scored): {report['insufficient_data']['pixels']:,} px")
        if json_out:
            with atomic_path(json_out) as tmp:
                tmp.write_text(json.dumps(report, indent=2))
            console.print(f"metrics written to {json_out}")
