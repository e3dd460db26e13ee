"""The core path every interface uses (demo, CLI predict, REST API, Dask batch):

    cube ──features──▶ model ──▶ probabilities ──▶ class map, field summary (+ explanations)

INTERFACE CONTRACT (issue 6; the API and batch code against it):

    analyse(cube, model, *, fields=None, explain=False, method="ig", tile=256,
            progress=None) -> AnalysisResult
        cube:   a valid cube (xarray.Dataset, numpy- or dask-backed) — see agrostress.cube
        model:  agrostress.models.LoadedModel (agrostress.models.load(DIR))
        fields: optional GeoDataFrame of field polygons (any CRS; must carry a `field_id`
                column or one is assigned 1..n) — else the cube's `field_id` layer if present
        explain: compute captum attributions (per pixel, aggregated per field and class)
        method: "ig" (Integrated Gradients, default) | "saliency" | "gradientshap" | "occlusion"
        tile:   spatial tile size in pixels; the cube is streamed tile by tile (with a halo of
                model.context pixels), so cubes larger than memory work; results are
                identical to a single pass.
        progress: optional callable(done_tiles: int, total_tiles: int)

    AnalysisResult (dataclass):
        classes:        xarray.DataArray uint8 (y, x): 0 healthy, 1 nitrogen_deficiency,
                        2 yellow_rust, 255 nodata / insufficient data; CRS in spatial_ref
        probabilities:  xarray.DataArray float32 (class, y, x), NaN where nodata
        confidence:     xarray.DataArray float32 (y, x), max probability, NaN where nodata
        insufficient:   xarray.DataArray bool (y, x)
        fields:         list[FieldSummary] per field: field_id, call (class name or None),
                        confidence, class_fractions {name: share of valid pixels},
                        mean_probabilities {name: p}, valid_pixel_share, area_ha
                        (+ true_label when the cube has labels)
        totals:         dict: scene hectares per class, nodata hectares, total hectares
        attributions:   optional dict (only with explain=True): per field and class the
                        (time step × feature) heatmap, dates, feature names, method,
                        completeness check result; and a (y, x) float32 evidence map
        model_card:     the model's card dict (name, version, …)

    write_outputs(result, out_dir) -> dict[str, Path]
        Writes atomically (temporary name, then rename) into out_dir:
        stress_map.tif (uint8 COG, colour table, class names, nodata 255),
        probabilities.tif (float32 COG: one band per class + confidence), stress_map.png,
        summary.json; with attributions: attributions.json, attributions.png,
        evidence.tif. Returns {artefact name: path}.

Additions beyond the contract (keyword-only, defaults keep the contract's behaviour): see
:func:`analyse` and :class:`AnalysisResult`; ``docs/outputs.md`` describes every artefact.
"""

from agrostress.analysis.core import MIN_VALID_SHARE, TRAJECTORY_FEATURES, analyse, tile_halo
from agrostress.analysis.demo import (
    DEMO_SEED,
    SAMPLE_SCENE,
    DemoReport,
    demo_scene,
    run_demo,
    write_sample_scene,
)
from agrostress.analysis.explanations import Attributions, ExplainedPixels
from agrostress.analysis.fields import (
    grid_transform,
    prepare_fields,
    rasterise_fields,
    read_fields,
)
from agrostress.analysis.outputs import pending_renders, render_outputs, write_outputs
from agrostress.analysis.references import request_reference
from agrostress.analysis.result import FORMAT, AnalysisResult
from agrostress.analysis.summaries import FieldSummary, field_summaries, pretty_name

__all__ = [
    "DEMO_SEED",
    "FORMAT",
    "MIN_VALID_SHARE",
    "SAMPLE_SCENE",
    "TRAJECTORY_FEATURES",
    "AnalysisResult",
    "Attributions",
    "DemoReport",
    "ExplainedPixels",
    "FieldSummary",
    "analyse",
    "demo_scene",
    "field_summaries",
    "grid_transform",
    "prepare_fields",
    "pending_renders",
    "pretty_name",
    "rasterise_fields",
    "read_fields",
    "render_outputs",
    "request_reference",
    "run_demo",
    "tile_halo",
    "write_outputs",
    "write_sample_scene",
]
