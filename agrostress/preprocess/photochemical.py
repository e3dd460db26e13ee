"""The FFDNN photochemical vegetation-index filter: bands → LAI and leaf chlorophyll (LCC).

* LAI from WDVI = NIR − g·Red (spyndex ``WDVI`` with ``sla = g``, the soil-line slope),
  inverted with CLAIR: ``LAI = −(1/α)·ln(1 − WDVI/WDVI∞)``.
* LCC (µg/cm²) from a chlorophyll ratio with ``LCC = a·ln(ratio) + b``. The parameter file
  names the ratio (``lcc_index``, chosen by the calibration among ``TCARIOSAVI`` — Haboudane
  2002 —, its red-edge variant ``TCARIOSAVI705`` and ``MCARIOSAVI705``, all B05/B06-based in
  their 705 forms); the shipped file uses **MCARI/OSAVI705** (spyndex ``MCARIOSAVI705``).

g, α, WDVI∞, a, b are calibrated against the simulator's true LAI and Cab
(:mod:`agrostress.preprocess.calibrate`) and stored, versioned, in
``photochemical_params.json``. Outputs are clipped to physical ranges; non-finite inputs give
NaN. LCC is only meaningful where there is canopy (LAI ≳ 0.5): over bare soil the ratio
measures the soil, not leaves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agrostress.atomic import atomic_path
from agrostress.preprocess.indices import compute_index, index_def

PARAMS_FILE = Path(__file__).with_name("photochemical_params.json")
PHOTOCHEMICAL_FEATURES: tuple[str, ...] = ("LAI", "LCC")


@dataclass(frozen=True)
class PhotochemicalParams:
    """Calibrated constants of the photochemical filter (one versioned JSON file)."""

    version: str
    soil_line_slope: float  # g in WDVI = NIR − g·Red
    alpha: float  # CLAIR extinction-like coefficient
    wdvi_inf: float  # WDVI of an infinitely dense canopy
    a: float  # LCC = a·ln(ratio) + b
    b: float
    lcc_index: str = "TCARIOSAVI"
    lai_max: float = 8.0
    lcc_max: float = 100.0
    ratio_min: float = 1e-3  # clip for the chlorophyll ratio before the log
    fit: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.alpha <= 0 or self.wdvi_inf <= 0:
            raise ValueError("alpha and wdvi_inf must be positive")
        index_def(self.lcc_index)

    @classmethod
    def load(cls, path: str | Path | None = None) -> PhotochemicalParams:
        """Read a parameter file (default: the one shipped with the package)."""
        path = Path(path) if path else PARAMS_FILE
        data = json.loads(path.read_text())
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | Path | None = None) -> Path:
        """Write the parameters as JSON, atomically."""
        path = Path(path) if path else PARAMS_FILE
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path


class PhotochemicalFilter:
    """Compute LAI and LCC from band arrays keyed by cube band name (any common shape)."""

    def __init__(self, params: PhotochemicalParams | None = None):
        self.params = params or PhotochemicalParams.load()

    @property
    def bands(self) -> tuple[str, ...]:
        """Cube bands the filter reads."""
        need = {"B04", "B08", *index_def(self.params.lcc_index).bands}
        return tuple(sorted(need))

    def wdvi(self, bands: Mapping[str, np.ndarray]) -> np.ndarray:
        return compute_index("WDVI", bands, {"sla": self.params.soil_line_slope})

    def lai(self, bands: Mapping[str, np.ndarray]) -> np.ndarray:
        """CLAIR inversion of WDVI, clipped to [0, lai_max]."""
        p = self.params
        x = self.wdvi(bands)
        x *= np.float32(-1.0 / p.wdvi_inf)  # −WDVI/WDVI∞
        xmin = np.float32(np.exp(-p.alpha * p.lai_max) - 1.0)
        np.clip(x, xmin, np.float32(0), out=x)
        x += np.float32(
            1.0
        )  # 1 − WDVI/WDVI∞ ∈ [exp(−α·LAImax), 1]: log (not log1p) is exact enough
        with np.errstate(all="ignore"):
            np.log(x, out=x)
        x *= np.float32(-1.0 / p.alpha)
        x += np.float32(0.0)  # −0.0 → 0.0
        return x

    def ratio(self, bands: Mapping[str, np.ndarray]) -> np.ndarray:
        """The chlorophyll ratio named by ``lcc_index`` (MCARI/OSAVI705 in the shipped file)."""
        return compute_index(self.params.lcc_index, bands)

    def lcc(self, bands: Mapping[str, np.ndarray]) -> np.ndarray:
        """Leaf chlorophyll content (µg/cm²), clipped to [0, lcc_max]."""
        p = self.params
        r = self.ratio(bands)
        np.maximum(r, np.float32(p.ratio_min), out=r)  # NaN stays NaN
        with np.errstate(all="ignore"):
            out = np.log(r)
        out *= np.float32(p.a)
        out += np.float32(p.b)
        np.clip(out, np.float32(0), np.float32(p.lcc_max), out=out)
        return out

    def __call__(self, bands: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"LAI": self.lai(bands), "LCC": self.lcc(bands)}
