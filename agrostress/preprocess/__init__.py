"""Preprocessing: cloud mask, temporal grid, spectral indices, photochemical filter, features.

See ``docs/preprocess.md``. The one entry point models need is :func:`feature_stack`.
"""

from agrostress.preprocess.features import (
    DEFAULT_SPEC,
    PRESETS,
    FeatureSpec,
    compute_block,
    feature_stack,
    fill_nearest,
    open_features,
    parse_spec,
    pixel_dataarray,
    to_pixel_array,
    write_features,
)
from agrostress.preprocess.grid import (
    Regularisation,
    Regularised,
    TemporalGrid,
    day_of_year,
    insufficient,
    regularise,
    smooth,
)
from agrostress.preprocess.indices import (
    DEFAULT_INDICES,
    available_indices,
    compute_index,
    compute_indices,
)
from agrostress.preprocess.mask import CloudMaskPolicy, apply_mask, valid_mask
from agrostress.preprocess.normalise import NormStats
from agrostress.preprocess.photochemical import PhotochemicalFilter, PhotochemicalParams

__all__ = [
    "DEFAULT_INDICES",
    "DEFAULT_SPEC",
    "PRESETS",
    "CloudMaskPolicy",
    "FeatureSpec",
    "NormStats",
    "PhotochemicalFilter",
    "PhotochemicalParams",
    "Regularisation",
    "Regularised",
    "TemporalGrid",
    "apply_mask",
    "available_indices",
    "compute_block",
    "compute_index",
    "compute_indices",
    "day_of_year",
    "feature_stack",
    "fill_nearest",
    "insufficient",
    "open_features",
    "parse_spec",
    "pixel_dataarray",
    "regularise",
    "smooth",
    "to_pixel_array",
    "valid_mask",
    "write_features",
]
