"""One conversion to plain JSON values, for every file and answer the product writes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np


def jsonable(obj: Any, *, digits: int | None = None) -> Any:
    """numpy scalars and arrays, nested containers, paths and dates → plain JSON values:
    NaN and ±inf → None, tuples and sets → lists, dates → ISO strings, anything else → its
    string; ``digits`` rounds floats to that many significant digits."""
    if obj is None or isinstance(obj, bool | str | int):
        return obj
    if isinstance(obj, np.generic):
        return jsonable(obj.item(), digits=digits)
    if isinstance(obj, float):
        if not math.isfinite(obj):
            return None
        return float(f"{obj:.{digits}g}") if digits else obj
    if isinstance(obj, dict):
        return {str(k): jsonable(v, digits=digits) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set):
        return [jsonable(v, digits=digits) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist(), digits=digits)
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return str(obj)
