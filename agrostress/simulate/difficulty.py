"""Difficulty presets: how strong the stresses are and how L2A-like noisy the observations are."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Difficulty:
    """Knobs of the simulator that set how separable the three classes are."""

    name: str
    n_severity: tuple[float, float]  # nitrogen deficiency severity s (field level)
    rust_max_fraction: tuple[float, float]  # max diseased leaf-area fraction inside foci
    rust_focus_share: tuple[float, float]  # share of a field covered by foci at onset
    noise_scale: float  # atmospheric residual, gain error and per-band noise multiplier
    misregistration_px: float  # co-registration error, sd in pixels
    cloud_scale: float  # multiplies the monthly cloud climatology
    haze_rate: float  # probability of a date with undetected haze (SCL stays 4/5)
    pixel_scatter: float  # within-field variability multiplier


PRESETS: dict[str, Difficulty] = {
    "easy": Difficulty(
        name="easy",
        n_severity=(0.35, 0.6),
        rust_max_fraction=(0.45, 0.7),
        rust_focus_share=(0.2, 0.3),
        noise_scale=0.5,
        misregistration_px=0.15,
        cloud_scale=0.6,
        haze_rate=0.02,
        pixel_scatter=0.6,
    ),
    "benchmark": Difficulty(
        name="benchmark",
        n_severity=(0.1, 0.6),
        rust_max_fraction=(0.15, 0.7),
        rust_focus_share=(0.05, 0.3),
        noise_scale=1.0,
        misregistration_px=0.3,
        cloud_scale=1.0,
        haze_rate=0.05,
        pixel_scatter=1.0,
    ),
    "hard": Difficulty(
        name="hard",
        n_severity=(0.05, 0.35),
        rust_max_fraction=(0.08, 0.35),
        rust_focus_share=(0.03, 0.15),
        noise_scale=1.8,
        misregistration_px=0.45,
        cloud_scale=1.25,
        haze_rate=0.1,
        pixel_scatter=1.4,
    ),
}


def get_difficulty(name: str) -> Difficulty:
    """The preset called ``name`` (easy, benchmark, hard)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown difficulty {name!r}; choose one of {sorted(PRESETS)}") from None
