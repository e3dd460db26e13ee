"""The result of an analysis: maps, field summaries, explanations, scene facts."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import xarray as xr
from affine import Affine

from agrostress.analysis.explanations import Attributions
from agrostress.analysis.summaries import FieldSummary
from agrostress.analysis.timeline import FieldTimeline

FORMAT = "agrostress-analysis/1"


@dataclass
class AnalysisResult:
    """Everything :func:`analyse` found; :func:`write_outputs` turns it into files."""

    classes: xr.DataArray
    probabilities: xr.DataArray
    confidence: xr.DataArray
    insufficient: xr.DataArray
    fields: list[FieldSummary]
    totals: dict[str, Any]
    attributions: Attributions | None
    model_card: dict[str, Any]
    # additions
    field_index: xr.DataArray | None = None
    """int32 (y, x): 1-based position in ``fields`` of each pixel's field, 0 outside."""
    trajectories: dict[str, Any] | None = None
    """Per-field and reference mean series of ``trajectory_features`` (see :func:`analyse`)."""
    timelines: list[FieldTimeline] | None = None
    """Per field (in ``fields`` order): its calls on past dates (in-season models)."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Scene facts: crs (WKT), transform, shape, dates, year, grid, tiles, seconds, …"""

    timings: dict[str, float] = field(default_factory=dict)
    """Seconds spent: read, preprocess, model, trajectories, explain, total."""

    @property
    def class_names(self) -> list[str]:
        return [str(c) for c in self.probabilities["class"].values]

    @property
    def crs_wkt(self) -> str:
        """The CRS (WKT) stored with the maps (survives cropping)."""
        ref = self.classes.coords.get("spatial_ref")
        wkt = None if ref is None else (ref.attrs.get("crs_wkt") or ref.attrs.get("spatial_ref"))
        return str(wkt or self.meta["crs"])

    @property
    def transform(self) -> Affine:
        """The maps' affine transform, from their pixel-centre coordinates (survives cropping)."""
        x, y = self.classes["x"].values, self.classes["y"].values
        a, _, c, _, e, f = self.meta["transform"][:6]
        dx = float(x[1] - x[0]) if x.size > 1 else a
        dy = float(y[1] - y[0]) if y.size > 1 else e
        return Affine(dx, 0.0, float(x[0]) - dx / 2, 0.0, dy, float(y[0]) - dy / 2)

    def crop(self, row: int, col: int, height: int, width: int) -> AnalysisResult:
        """This result cut to a window of its grid (e.g. a batch tile without its halo): the
        maps, the field index, the evidence maps and the explained pixels (re-indexed); the
        field summaries, totals and timings stay those of the whole analysis; ``meta`` gets
        the window's shape and transform and ``batch_window``."""
        if (row, col, height, width) == (0, 0, *self.classes.shape[-2:]):
            return self
        window = {"y": slice(row, row + height), "x": slice(col, col + width)}

        def cut(a: xr.DataArray | None) -> xr.DataArray | None:
            return None if a is None else a.isel(window)

        attributions = self.attributions
        if attributions is not None:
            attributions = dataclasses.replace(
                attributions, evidence=cut(attributions.evidence),
                evidence_rust_vs_n=cut(attributions.evidence_rust_vs_n),
                pixels=attributions.pixels.within(row, col, height, width))
        meta = dict(self.meta)
        if "transform" in meta:
            a, b, c, d, e, f = list(meta["transform"])[:6]
            meta.update(shape=[height, width], transform=[a, b, c + col * a, d, e, f + row * e],
                        batch_window=[row, col, height, width])
        return dataclasses.replace(
            self, classes=cut(self.classes), probabilities=cut(self.probabilities),
            confidence=cut(self.confidence), insufficient=cut(self.insufficient),
            field_index=cut(self.field_index), attributions=attributions, meta=meta)

