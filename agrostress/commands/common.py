"""Shared helpers for CLI commands: error reporting and progress bars."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

if TYPE_CHECKING:
    from agrostress.decision import DecisionPolicy

console = Console(stderr=True)


def priors_option() -> typer.models.OptionInfo:
    """``--priors``, shared by the commands that decide (predict, batch)."""
    return typer.Option(
        None, "--priors", help="class priors: default | training | "
        "healthy=0.7,nitrogen_deficiency=0.2,yellow_rust=0.1 (default: settings priors)")


def min_confidence_option(what: str = "a pixel or field is 'uncertain'") -> typer.models.OptionInfo:
    """``--min-confidence``: the abstention threshold."""
    return typer.Option(None, "--min-confidence", min=0.0, max=0.999,
                        help=f"below this probability {what} (default: settings)")


def as_of_option() -> typer.models.OptionInfo:
    """``--as-of``: the date the call is made on (in season)."""
    return typer.Option(
        None, "--as-of", help="call as of this date (YYYY-MM-DD): later acquisitions are "
        "ignored and later grid steps masked (default: the last acquisition)")


def crop_column_option() -> typer.models.OptionInfo:
    """``--crop-column``: the parcel attribute that names the crop."""
    return typer.Option(
        None, "--crop-column", help="column of --fields that names each parcel's crop: "
        "pixels outside winter-wheat parcels are 'not wheat'")


def wheat_values_option() -> typer.models.OptionInfo:
    """``--wheat-values``: the values of the crop column that mean winter wheat."""
    return typer.Option(
        None, "--wheat-values", help="comma-separated values of --crop-column that mean "
        "winter wheat (case-insensitive)")


def device_option() -> typer.models.OptionInfo:
    """``--device``: where the model runs."""
    return typer.Option(
        "cpu", "--device", help="where the model runs: cpu (default), cuda, cuda:N or mps "
        "(attributions run on the CPU)")


def not_wheat_option() -> typer.models.OptionInfo:
    """``--not-wheat/--no-not-wheat``: the built-in not-wheat detector."""
    return typer.Option(
        True, "--not-wheat/--no-not-wheat", help="without a crop attribute: mark pixels that "
        "are not winter wheat with the built-in detector (AGROSTRESS_NOT_WHEAT_MODEL_DIR)")


def crop_preset_option() -> typer.models.OptionInfo:
    """``--crop-preset``: a parcel register's column and wheat codes."""
    from agrostress.analysis.crops import PRESETS

    return typer.Option(
        None, "--crop-preset", help=f"parcel register ({', '.join(PRESETS)}): its crop "
        "column and winter-wheat codes (--crop-column / --wheat-values override them)")


def decision_policy(priors: str | None, min_confidence: float | None) -> DecisionPolicy:
    """The decision policy from command-line values, the settings filling the gaps."""
    from agrostress.decision import policy_from
    from agrostress.settings import get_settings

    settings = get_settings()
    return policy_from(priors or settings.priors,
                       settings.min_confidence if min_confidence is None else min_confidence,
                       settings.max_ood, settings.season_complete_doy)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn expected errors (bad input, missing files) into a one-line message and exit 2."""
    try:
        yield
    except (ValueError, FileNotFoundError, FileExistsError, PermissionError, KeyError) as e:
        console.print(f"[bold red]error:[/] {e}")
        raise typer.Exit(code=2) from e


def progress() -> Progress:
    """A rich progress bar with count, elapsed and remaining time."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
