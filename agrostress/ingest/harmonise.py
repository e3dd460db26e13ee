"""Processing-baseline harmonisation: decide the L2A BOA offset of a scene, then check it.

Rule (documented in docs/ingest.md):

1. **Metadata decides first.** Processing baseline ``>= 04.00`` (``s2:processing_baseline``,
   also Collection-1 reprocessing 05.xx) means the DN carry ``BOA_ADD_OFFSET = -1000``:
   reflectance = (DN - 1000) / 10000. Older baselines: reflectance = DN / 10000. An explicit
   ``earthsearch:boa_offset_applied: true`` says the provider already removed the offset from
   the COGs (offset 0). Without a baseline, acquisitions from 2022-01-25 on are assumed to carry
   the offset. A non-zero ``raster:bands`` offset (-0.1) is only used as a hint in messages.
2. **The pixels check it.** Vegetation (SCL 4) red (B04) DN are ~100-800 without offset and
   ~1100-1800 with it (vegetation red reflectance is ~0.01-0.08). With at least
   ``MIN_PIXELS`` vegetation pixels: a median below 1000 means *no offset in the data*
   (reflectance would be negative otherwise); a 5th percentile at or above 1000 means *offset
   present*. When the data contradict the metadata, a warning names the scene and the data win
   (the known wrong flags, earth-search issues #66/#71). Otherwise the metadata stand.
"""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from agrostress.cube import BOA_ADD_OFFSET, QUANTIFICATION_VALUE, dn_to_reflectance

LOGGER = logging.getLogger("agrostress.ingest")

BASELINE_04_START = dt.date(2022, 1, 25)
OFFSET_DN_THRESHOLD = 1000.0
MIN_PIXELS = 50
SCL_VEGETATION = 4


class OffsetWarning(UserWarning):
    """Scene metadata and pixel values disagree about the L2A BOA offset."""


@dataclass(frozen=True)
class OffsetDecision:
    """The offset to add to the DN of one scene, and why."""

    offset: float
    reason: str
    corrected: bool = False  # True when the pixel check overruled the metadata

    def as_attr(self) -> dict[str, Any]:
        return {"offset": self.offset, "reason": self.reason, "corrected": self.corrected}


def parse_baseline(value: Any) -> float | None:
    """'04.00' / '5.11' / 4 / 'N0510' (product-name form) → 4.0 / 5.11 / 4.0 / 5.1; else None."""
    if value is None or value == "":
        return None
    text = str(value).strip().upper()
    if len(text) == 5 and text[0] == "N" and text[1:].isdigit():
        text = f"{text[1:3]}.{text[3:]}"
    try:
        return float(text)
    except ValueError:
        return None


def offset_from_metadata(properties: dict[str, Any], acquired: Any = None) -> OffsetDecision:
    """Decide the DN offset from STAC item properties (or equivalent tags)."""
    applied = properties.get("earthsearch:boa_offset_applied")
    if applied is None:
        applied = properties.get("sentinel:boa_offset_applied")
    baseline = parse_baseline(
        properties.get("s2:processing_baseline", properties.get("sentinel:processing_baseline"))
    )
    if applied is True or str(applied).lower() == "true":
        return OffsetDecision(
            0.0, f"provider removed the offset (boa_offset_applied, PB {baseline})"
        )
    if baseline is not None:
        if baseline >= 4.0:
            return OffsetDecision(BOA_ADD_OFFSET, f"processing baseline {baseline:05.2f} >= 04.00")
        return OffsetDecision(0.0, f"processing baseline {baseline:05.2f} < 04.00")
    when = acquired if acquired is not None else properties.get("datetime")
    if when is not None:
        d = pd.Timestamp(when).date()
        if d >= BASELINE_04_START:
            return OffsetDecision(BOA_ADD_OFFSET, f"no baseline given; acquired {d} >= 2022-01-25")
        return OffsetDecision(0.0, f"no baseline given; acquired {d} < 2022-01-25")
    return OffsetDecision(0.0, "no baseline nor date given; assuming no offset")


def offset_in_data(red_dn: np.ndarray, scl: np.ndarray) -> bool | None:
    """True/False when the pixel values show / rule out the +1000 DN offset, None if unsure."""
    red = np.asarray(red_dn, dtype=np.float64)
    sel = (np.asarray(scl) == SCL_VEGETATION) & np.isfinite(red) & (red > 0)
    values = red[sel]
    if values.size < MIN_PIXELS:
        return None
    if float(np.median(values)) < OFFSET_DN_THRESHOLD:
        return False
    if float(np.percentile(values, 5)) >= OFFSET_DN_THRESHOLD:
        return True
    return None


def check_offset(
    decision: OffsetDecision,
    red_dn: np.ndarray,
    scl: np.ndarray,
    *,
    scene: str,
    enabled: bool = True,
) -> OffsetDecision:
    """Sanity-check ``decision`` against the scene's pixels; warn and correct on contradiction."""
    if not enabled:
        return decision
    present = offset_in_data(red_dn, scl)
    if present is None or present == (decision.offset != 0.0):
        return decision
    new = BOA_ADD_OFFSET if present else 0.0
    msg = (
        f"{scene}: metadata say DN offset {decision.offset:g} ({decision.reason}) but the "
        f"vegetation red DN {'carry' if present else 'do not carry'} the +1000 offset; "
        f"using offset {new:g}"
    )
    warnings.warn(msg, OffsetWarning, stacklevel=2)
    LOGGER.warning(msg)
    return OffsetDecision(new, f"pixel check overruled metadata ({decision.reason})", True)


def harmonise(dn: np.ndarray, decision: OffsetDecision,
              valid: np.ndarray | None = None) -> np.ndarray:
    """DN (any shape, 0 = no data, may be float with NaN) → float32 reflectance.

    ``valid`` (broadcastable to ``dn``, e.g. a dataMask of (y, x)): where given, it alone says
    where there is data, and DN 0 inside it is a valid dark value (harmonised service output
    clamps to 0) rather than no data."""
    dn = np.asarray(dn)
    if valid is not None:
        out = (dn.astype(np.float32) + np.float32(decision.offset)) / np.float32(QUANTIFICATION_VALUE)
        return np.where(valid, out, np.float32(np.nan)).astype(np.float32)
    if np.issubdtype(dn.dtype, np.floating):
        nan = ~np.isfinite(dn)
        out = dn_to_reflectance(np.where(nan, 0, dn), offset=decision.offset)
        out[nan] = np.nan
        return out
    return dn_to_reflectance(dn, offset=decision.offset)
