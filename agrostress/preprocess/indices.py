"""Spectral indices from the cube's bands, with formulas taken from spyndex.

Every index whose formula exists in spyndex is evaluated from spyndex's own formula string
(compiled once, evaluated on numpy arrays of any shape, float32 in → float32 out); the only
hand-written index is CCCI = NDRE / NDVI, which spyndex lacks. Results that are not finite
(division by zero, log of a negative, …) become NaN.

Band symbols (spyndex → cube): B→B02, G→B03, R→B04, RE1→B05, RE2→B06, RE3→B07, N→B08,
N2→B8A, S1→B11, S2→B12. Constants use spyndex defaults, plus the Sentinel-2A central
wavelengths for ``lambda*`` and the calibrated soil-line slope for ``sla`` (WDVI).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import spyndex

from agrostress.cube import BANDS

SYMBOL_TO_BAND: dict[str, str] = {
    "B": "B02",
    "G": "B03",
    "R": "B04",
    "RE1": "B05",
    "RE2": "B06",
    "RE3": "B07",
    "N": "B08",
    "N2": "B8A",
    "S1": "B11",
    "S2": "B12",
}
BAND_TO_SYMBOL: dict[str, str] = {b: s for s, b in SYMBOL_TO_BAND.items()}

WAVELENGTHS: dict[str, float] = {
    "lambdaG": 559.8,
    "lambdaR": 664.6,
    "lambdaN": 832.8,
    "lambdaN2": 864.7,
    "lambdaS1": 1613.7,
    "lambdaS2": 2202.4,
}

CUSTOM_FORMULAS: dict[str, str] = {
    # Canopy Chlorophyll Content Index (Barnes 2000), not in spyndex: NDRE / NDVI.
    "CCCI": "((N-RE1)/(N+RE1))/((N-R)/(N+R))",
}

DEFAULT_INDICES: tuple[str, ...] = (
    # chlorophyll / nitrogen
    "NDVI",
    "NDREI",
    "CIRE",
    "MTCI",
    "S2REP",
    "MCARI",
    "TCARIOSAVI",
    "WDVI",
    "CCCI",
    # disease / senescence / pigments / water
    "PSRI",
    "REDSI",
    "ARI",
    "CRI700",
    "NGRDI",
    "NDMI",
)
"""The documented default index set (see ``docs/preprocess.md`` for the reasons)."""


@dataclass(frozen=True)
class IndexDef:
    """One computable index: name, formula, the spyndex symbols and cube bands it needs."""

    name: str
    formula: str
    symbols: tuple[str, ...]
    bands: tuple[str, ...]
    source: str  # "spyndex" or "custom"


def default_constants() -> dict[str, float]:
    """spyndex's constant defaults (those that have one) plus S2 wavelengths."""
    return dict(_default_constants())


@lru_cache(maxsize=1)
def _default_constants() -> dict[str, float]:
    out: dict[str, float] = {}
    for name, c in spyndex.constants.items():
        value = getattr(c, "default", None)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = float(value)
    out.update(WAVELENGTHS)
    return out


@lru_cache(maxsize=1)
def _catalogue() -> dict[str, IndexDef]:
    constants = default_constants()
    known = set(SYMBOL_TO_BAND) | set(constants)
    out: dict[str, IndexDef] = {}
    for name, idx in spyndex.indices.items():
        symbols = tuple(str(s) for s in idx.bands)
        if all(s in known for s in symbols):
            out[name] = _make(name, str(idx.formula), symbols, "spyndex")
    for name, formula in CUSTOM_FORMULAS.items():
        syms = tuple(s for s in ("N", "RE1", "R") if s in formula)
        out[name] = _make(name, formula, syms, "custom")
    return out


def _make(name: str, formula: str, symbols: tuple[str, ...], source: str) -> IndexDef:
    bands = tuple(b for b in BANDS if BAND_TO_SYMBOL[b] in symbols)
    return IndexDef(name, formula, symbols, bands, source)


def available_indices() -> list[str]:
    """Every index computable from the cube's ten bands (spyndex's and CCCI), sorted."""
    return sorted(_catalogue())


def index_def(name: str) -> IndexDef:
    """The definition of ``name`` (exact spyndex spelling, else a unique case-insensitive match)."""
    cat = _catalogue()
    if name in cat:
        return cat[name]
    matches = [k for k in cat if k.lower() == name.lower()]
    if len(matches) == 1:
        return cat[matches[0]]
    if name in spyndex.indices:
        need = sorted(set(spyndex.indices[name].bands) - set(SYMBOL_TO_BAND))
        raise ValueError(
            f"index {name!r} cannot be computed from the cube's Sentinel-2 bands (needs {need})"
        )
    raise ValueError(f"unknown index {name!r}; see agrostress.preprocess.available_indices()")


@lru_cache(maxsize=512)
def _compiled(formula: str) -> Any:
    return compile(formula, "<index>", "eval")


def compute_index(
    name: str,
    bands: Mapping[str, np.ndarray],
    constants: Mapping[str, float] | None = None,
) -> np.ndarray:
    """Evaluate one index on arrays keyed by cube band name (``"B04"``) or spyndex symbol."""
    d = index_def(name)
    params: dict[str, Any] = dict(_default_constants())
    if constants:
        params.update(constants)
    for sym in d.symbols:
        if sym in SYMBOL_TO_BAND:
            band = SYMBOL_TO_BAND[sym]
            if band in bands:
                params[sym] = bands[band]
            elif sym in bands:
                params[sym] = bands[sym]
            else:
                raise ValueError(f"index {d.name} needs band {band} ({sym})")
    with np.errstate(all="ignore"):
        r = eval(_compiled(d.formula), {"__builtins__": {}}, params)  # noqa: S307 (spyndex formula)
        r = np.asarray(r)
        if r.dtype.kind != "f":
            r = r.astype(np.float32)
        if r.ndim == 0:
            return r + (r - r)
        if any(r is params[s] for s in d.symbols):  # a bare band: never modify the input
            r = r.copy()
        tmp = r - r  # 0 where finite, NaN where ±inf or NaN (branch-free)
        r += tmp
    return r


def compute_indices(
    names: Sequence[str],
    bands: Mapping[str, np.ndarray],
    constants: Mapping[str, float] | None = None,
) -> dict[str, np.ndarray]:
    """Evaluate several indices; returns ``{name: array}`` in the order given."""
    return {n: compute_index(n, bands, constants) for n in names}
