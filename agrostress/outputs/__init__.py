"""Outputs of an analysis: COGs, PNG renderings and JSON summaries (see ``docs/outputs.md``).

:func:`write_all` (used by :func:`agrostress.analysis.write_outputs`) writes them all into a
folder atomically.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from agrostress.atomic import atomic_path
from agrostress.cube import NODATA
from agrostress.outputs.cog import (
    CLASS_COLOURS,
    class_colormap,
    map_codes,
    validate_cog,
    write_class_sidecars,
    write_cog,
)
from agrostress.outputs.summary import attributions_dict, jsonable, summary_dict, write_json

ARTEFACTS: dict[str, str] = {
    "stress_map": "stress_map.tif",
    "stress_map_style": "stress_map.qml",
    "stress_map_categories": "stress_map.tif.aux.xml",
    "probabilities": "probabilities.tif",
    "stress_map_png": "stress_map.png",
    "summary": "summary.json",
    "probability_histogram": "probability_histogram.png",
    "trajectories": "trajectories.png",
    "timeline": "timeline.png",
    "attributions": "attributions.json",
    "attributions_png": "attributions.png",
    "attributions_fields_png": "attributions_fields.png",
    "evidence": "evidence.tif",
    "evidence_png": "evidence.png",
    "pixel_attributions": "pixel_attributions.npz",
}
"""Artefact name → file name (only those that apply to a result are written)."""


def _is_previous_output(path: Path) -> bool:
    s = path / "summary.json"
    if not s.is_file():
        return False
    try:
        return str(json.loads(s.read_text()).get("format", "")).startswith("agrostress-analysis")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return False


def check_out_dir(out_dir: Path, *, overwrite: bool = True) -> None:
    """Refuse to replace a folder that is neither empty nor an earlier AgroStress output."""
    if out_dir.exists():
        if not out_dir.is_dir():
            raise FileExistsError(f"{out_dir} exists and is not a folder")
        if any(out_dir.iterdir()):
            if not _is_previous_output(out_dir):
                raise FileExistsError(
                    f"{out_dir} is not empty and holds no earlier AgroStress output; "
                    "choose a new or empty folder"
                )
            if not overwrite:
                raise FileExistsError(f"{out_dir} exists (allow overwriting to replace it)")


def write_all(result: Any, out_dir: Path, *, overwrite: bool = True,
              plots: bool = True, renders: bool = True) -> dict[str, Path]:
    """Write every artefact that applies to ``result``; returns {artefact name: final path}.

    ``renders=False`` leaves out the PNGs (:func:`render_pngs` draws them later, e.g. after
    the REST service has answered)."""
    out_dir = Path(out_dir)
    check_out_dir(out_dir, overwrite=overwrite)
    names = result.class_names
    crs, transform = result.crs_wkt, result.transform
    written: list[str] = []
    card = result.model_card
    common_tags = {
        "AGROSTRESS_MODEL": f"{card.get('name')} {card.get('version')}",
        "AGROSTRESS_FORMAT": str(result.meta.get("format")),
    }
    with atomic_path(out_dir, overwrite=True) as tmp:
        tmp.mkdir()
        classes = np.asarray(result.classes.values, dtype=np.uint8)
        write_cog(
            tmp / ARTEFACTS["stress_map"], classes, crs=crs, transform=transform, nodata=NODATA,
            band_names=["stress class"], colormap=class_colormap(names),
            tags={
                **common_tags,
                "CLASS_NAMES": ",".join(map_codes(names).values()),
                **{f"CLASS_{k}": n for k, n in map_codes(names).items()},
                "CLASS_255": "nodata (insufficient data)",
            },
            resampling="mode",
        )
        write_class_sidecars(tmp / ARTEFACTS["stress_map"], names)
        written += ["stress_map", "stress_map_style", "stress_map_categories"]
        stack = np.concatenate(
            [np.asarray(result.probabilities.values, dtype=np.float32),
             np.asarray(result.confidence.values, dtype=np.float32)[None]]
        )
        write_cog(
            tmp / ARTEFACTS["probabilities"], stack, crs=crs, transform=transform, nodata=np.nan,
            band_names=[f"p_{n}" for n in names] + ["confidence"],
            tags={**common_tags, "BANDS": ",".join([*(f"p_{n}" for n in names), "confidence"])},
            band_tags=[{"CLASS": n} for n in names] + [{"CLASS": "max probability"}],
            resampling="average",
        )
        written.append("probabilities")
        write_json(tmp / ARTEFACTS["summary"], summary_dict(result))
        written.append("summary")
        if result.attributions:
            a = result.attributions
            write_json(tmp / ARTEFACTS["attributions"], attributions_dict(result), digits=6)
            written.append("attributions")
            ev = np.stack([np.asarray(a.evidence), np.asarray(a.evidence_rust_vs_n)])
            ev = ev.astype(np.float32)
            write_cog(
                tmp / ARTEFACTS["evidence"], ev, crs=crs, transform=transform, nodata=np.nan,
                band_names=["evidence_predicted_class", "evidence_yellow_rust_vs_nitrogen"],
                tags={**common_tags, "METHOD": "integrated_gradients_total",
                      "BASELINE": str(a.baseline)},
                resampling="average",
            )
            written.append("evidence")
            _write_pixels(tmp / ARTEFACTS["pixel_attributions"], result)
            written.append("pixel_attributions")
        if renders:
            written += render_pngs(result, tmp, plots=plots)
    return {k: out_dir / ARTEFACTS[k] for k in written}


def png_artefacts(result: Any, *, plots: bool = True) -> list[str]:
    """The PNG artefacts :func:`render_pngs` draws for ``result`` (the trajectories and the
    time line only where there is something to draw)."""
    from agrostress.outputs import render

    names = ["stress_map_png"]
    if plots:
        names.append("probability_histogram")
        if result.trajectories:
            names.append("trajectories")
        if render.drawable_timelines(result):
            names.append("timeline")
    a = result.attributions
    if a:
        names.append("attributions_png")
        if plots and a.fields:
            names.append("attributions_fields_png")
        if plots:
            names.append("evidence_png")
    return names


def render_pngs(result: Any, folder: Path, *, plots: bool = True) -> list[str]:
    """Draw the PNG artefacts of ``result`` into the existing ``folder``, each file appearing
    atomically; the names of those drawn. ``plots=False``: only the map and the class
    attributions (the optional plots cost most of the drawing time)."""
    from agrostress.outputs import render

    drawers = {
        "stress_map_png": lambda p: render.stress_map_png(p, result),
        "probability_histogram": lambda p: render.histogram_png(p, result),
        "trajectories": lambda p: render.trajectories_png(p, result),
        "timeline": lambda p: render.timeline_png(p, result),
        "attributions_png": lambda p: render.attribution_png(p, result.attributions,
                                                             per="classes"),
        "attributions_fields_png": lambda p: render.attribution_png(p, result.attributions,
                                                                    per="fields"),
        "evidence_png": lambda p: render.evidence_png(p, result),
    }
    drawn = []
    for name in png_artefacts(result, plots=plots):
        final = Path(folder) / ARTEFACTS[name]
        tmp = final.with_name(f".{final.stem}.{uuid.uuid4().hex[:8]}.png")
        try:
            if drawers[name](tmp) is not None and tmp.exists():
                os.replace(tmp, final)
                drawn.append(name)
        finally:
            tmp.unlink(missing_ok=True)
    return drawn


def _write_pixels(path: Path, result: Any) -> None:
    a = result.attributions
    px = a.pixels
    fid = px.field_id
    np.savez_compressed(
        path,
        attributions=np.asarray(px.attributions, dtype=np.float32),
        x=np.asarray(px.x, dtype=np.float64),
        y=np.asarray(px.y, dtype=np.float64),
        field_id=np.asarray([str(f) for f in fid]) if fid else np.zeros(0, dtype="<U1"),
        target=np.asarray(px.target, dtype=np.int64),
        class_names=np.asarray(result.class_names),
        doys=np.asarray(a.doys),
        dates=np.asarray(a.dates),
        features=np.asarray(a.features),
        method=np.asarray(a.method),
    )


__all__ = [
    "ARTEFACTS",
    "CLASS_COLOURS",
    "attributions_dict",
    "check_out_dir",
    "class_colormap",
    "jsonable",
    "png_artefacts",
    "render_pngs",
    "summary_dict",
    "validate_cog",
    "write_all",
    "write_class_sidecars",
    "write_cog",
    "write_json",
]
