"""JSON artefacts: the scene/field summary and the aggregated attributions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agrostress import __version__
from agrostress.jsonable import jsonable
from agrostress.outputs.cog import map_codes


def write_json(path: str | Path, obj: Any, *, digits: int | None = None) -> Path:
    path = Path(path)
    path.write_text(json.dumps(jsonable(obj, digits=digits), indent=2, allow_nan=False) + "\n")
    return path


def summary_dict(result: Any) -> dict[str, Any]:
    """Everything a user or a service needs about a run, without the rasters."""
    card = result.model_card
    meta = result.meta
    out: dict[str, Any] = {
        "format": meta.get("format"),
        "agrostress_version": __version__,
        "model": {k: card.get(k) for k in ("name", "version", "architecture", "feature_spec",
                                           "grid", "created", "weights_sha256")},
        "scene": {k: meta.get(k) for k in ("crs_name", "epsg", "transform", "shape", "year",
                                           "first_date", "last_date", "observations", "grid",
                                           "source", "field_source", "wheat_mask", "tile",
                                           "halo", "tiles",
                                           "seconds")},
        "classes": {str(k): n for k, n in map_codes(result.class_names).items()}
        | {"255": "nodata"},
        "totals": result.totals,
        "fields": field_entries(result),
        "field_rule": (
            "call = class with the highest mean probability over the field's valid pixels "
            "(after the priors); when that probability is below the minimum confidence or "
            "most valid pixels abstain: 'too_early' while the season is incomplete (as-of "
            "date before decision.season_complete_doy; before decision.earliest_doy always), "
            "else 'uncertain' (also for inputs unlike any training season); None when less "
            "than the minimum share of its pixels has enough clear observations. "
            "call_since: the first date from which the current call has held (see timeline)"
        ),
        "season": meta.get("season"),
        "decision": meta.get("decision"),
        "reference": meta.get("reference"),
    }
    if result.trajectories:
        out["trajectories"] = result.trajectories
    if result.attributions:
        a = result.attributions
        out["explanations"] = {
            "method": a.method,
            "completeness": a.completeness,
            "explained_pixels": len(a.pixels),
        }
    return out


def field_entries(result: Any) -> list[dict[str, Any]]:
    """The field summaries as JSON objects, each with its time line and ``call_since`` when
    there are any."""
    if not result.timelines:
        return [row.to_dict() for row in result.fields]
    return [{**row.to_dict(), "call_since": t.call_since, "timeline": t.to_dict()}
            for row, t in zip(result.fields, result.timelines, strict=True)]


def attributions_dict(result: Any) -> dict[str, Any]:
    """The aggregated attributions (heatmaps [time step][feature]) without per-pixel arrays."""
    return result.attributions.to_dict()
