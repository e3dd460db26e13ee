"""``agrostress evaluate``: pixel- and field-level metrics of a model on labelled cubes."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from agrostress.commands.common import console, min_confidence_option, user_errors


def register(app: typer.Typer) -> None:
    @app.command("evaluate")
    def evaluate_cmd(
        model: Path = typer.Option(..., "--model", help="checkpoint folder"),
        cube: list[Path] = typer.Option(..., "--cube", help="labelled test cube (repeat)"),
        json_out: Path = typer.Option(None, "--json", help="write the metrics as JSON"),
        field_rule: str = typer.Option("mean_probability", "--field-rule",
                                       help="mean_probability | majority"),
        priors: str = typer.Option(
            "training", "--priors",
            help="class priors of the labelled set: training (balanced, as simulated test "
            "scenes) | default | healthy=…,nitrogen_deficiency=…,yellow_rust=…"),
        min_confidence: float | None = min_confidence_option(
            "a field is 'uncertain' in the coverage report"),
    ) -> None:
        """Evaluate a model: OA, kappa, macro-F1, per class, confusion, ECE; pixel and field."""
        from agrostress.atomic import atomic_path
        from agrostress.decision import policy_from
        from agrostress.models import load
        from agrostress.settings import get_settings
        from agrostress.training import evaluate_model

        with user_errors():
            loaded = load(model)
            settings = get_settings()
            decision = policy_from(priors, settings.min_confidence if min_confidence is None
                                   else min_confidence, settings.max_ood)
            report = evaluate_model(loaded, list(cube), field_rule=field_rule, decision=decision)
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
        ab = report["abstention"]
        console.print(
            "with abstention (min confidence "
            f"{ab['rule']['min_confidence']}, OOD ≤ {ab['rule']['max_ood']}): "
            f"pixels called {100 * ab['pixel']['coverage']:.0f} %, accuracy "
            f"{ab['pixel']['accuracy_called']:.3f}; fields called "
            f"{100 * ab['field']['coverage']:.0f} %, accuracy {ab['field']['accuracy_called']:.3f}"
        )
        console.print("priors: " + ", ".join(f"{k} {v:.2f}" for k, v in report["priors"].items()))
        if json_out:
            with atomic_path(json_out) as tmp:
                tmp.write_text(json.dumps(report, indent=2))
            console.print(f"metrics written to {json_out}")
