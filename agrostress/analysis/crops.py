"""Which parcels are winter wheat: a crop attribute of the user's parcel layer.

Only wheat gets a wheat verdict. When the parcels say what they grow (a column of the field
file, e.g. the French RPG's ``CODE_CULTU`` or EuroCrops' ``EC_hcat_n``), every pixel outside
the winter-wheat parcels is "not wheat" (map code :data:`~agrostress.cube.NOT_WHEAT_CODE`) and
the wheat reference is built from the wheat parcels alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class CropSelection:
    """The parcel attribute ``column`` and the values of it that mean winter wheat
    (compared as trimmed, case-insensitive text; integer codes as their digits)."""

    column: str
    values: frozenset[str]

    def __post_init__(self) -> None:
        if not self.column.strip():
            raise ValueError("the crop column name is empty")
        if not self.values:
            raise ValueError("no crop values mean wheat: give at least one")

    def is_wheat(self, parcels: Any) -> np.ndarray:
        """Boolean per row of the GeoDataFrame ``parcels``: its crop is winter wheat."""
        if self.column not in parcels.columns:
            have = ", ".join(str(c) for c in parcels.columns if c != "geometry")
            raise ValueError(f"the fields have no crop column {self.column!r} (columns: {have})")
        return np.array([_text(v) in self.values for v in parcels[self.column]], dtype=bool)

    def describe(self) -> dict[str, Any]:
        return {"column": self.column, "values": sorted(self.values)}


def _text(value: Any) -> str:
    """A crop value as comparable text: None/NaN → "", 3301010101.0 → "3301010101"."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        value = int(value)
    return str(value).strip().casefold()


#: Common parcel registers: the column and the codes of winter wheat (soft and durum).
PRESETS: dict[str, CropSelection] = {
    # France, Registre Parcellaire Graphique: BTH blé tendre d'hiver, BDH blé dur d'hiver
    "rpg": CropSelection("CODE_CULTU", frozenset({"bth", "bdh"})),
    # EuroCrops, HCAT names (and, with ``eurocrops-code``, the HCAT code of soft winter wheat)
    "eurocrops": CropSelection(
        "EC_hcat_n", frozenset({"winter_common_soft_wheat", "winter_durum_hard_wheat"})),
    "eurocrops-code": CropSelection("EC_hcat_c", frozenset({"3301010101"})),
}


def crop_selection(preset: str | None = None, column: str | None = None,
                   values: str | Iterable[str] | None = None) -> CropSelection | None:
    """The selection a user asked for: a preset, optionally with its column or values
    replaced, or a column with its values (comma-separated text or a list). None when
    nothing was asked."""
    if preset is None and column is None and values is None:
        return None
    base = None
    if preset is not None:
        base = PRESETS.get(preset.strip().lower())
        if base is None:
            raise ValueError(f"unknown crop preset {preset!r} (presets: {', '.join(PRESETS)})")
    if isinstance(values, str):
        values = values.split(",")
    wanted = (frozenset(v for v in (_text(x) for x in values) if v) if values is not None
              else base.values if base is not None else None)
    col = column if column is not None else base.column if base is not None else None
    if col is None:
        raise ValueError("wheat values need the crop column that holds them (--crop-column)")
    if wanted is None:
        raise ValueError(f"the crop column {col!r} needs the values that mean wheat "
                         "(--wheat-values) or a preset (--crop-preset)")
    return CropSelection(col, wanted)
