"""The ``agrostress`` command line: a thin Typer app over the library.

Each command lives in ``agrostress/commands/<name>.py`` and exposes ``register(app)``;
commands only parse, call the library and format.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="agrostress",
    help="Wheat yellow rust vs nitrogen deficiency from Sentinel-2 time series.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

COMMAND_MODULES: tuple[str, ...] = (
    "simulate",
    "validate",
    "train",
    "evaluate",
    "ingest",
    "preprocess",
    "serve",
    "predict",
    "demo",
    "batch",
)

for _name in COMMAND_MODULES:
    importlib.import_module(f"agrostress.commands.{_name}").register(app)


def main() -> None:  # pragma: no cover - console entry
    app()
