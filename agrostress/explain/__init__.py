"""Explanations: captum attributions over (time step × feature) and their aggregation.

``attribute`` explains normalised series of a torch model (pixel or spatial);
``aggregate`` turns many pixels into per-field / per-class heatmaps and evidence maps.
The core path (:func:`agrostress.analysis.analyse` with ``explain=True``) uses both.
"""

from agrostress.explain.aggregate import (
    RED_EDGE_PIGMENT,
    SWIR,
    evidence_maps,
    feature_group_mass,
    group_means,
    heatmap_summary,
    temporal_mass,
    to_series,
)
from agrostress.explain.attribute import (
    BASELINE,
    METHODS,
    ExplainConfig,
    ProbabilityModel,
    attribute,
    baseline_probabilities,
    check_method,
    completeness,
    explained_module,
    probabilities,
)

__all__ = [
    "BASELINE",
    "METHODS",
    "RED_EDGE_PIGMENT",
    "SWIR",
    "ExplainConfig",
    "ProbabilityModel",
    "attribute",
    "baseline_probabilities",
    "check_method",
    "completeness",
    "evidence_maps",
    "explained_module",
    "feature_group_mass",
    "group_means",
    "heatmap_summary",
    "probabilities",
    "temporal_mass",
    "to_series",
]
