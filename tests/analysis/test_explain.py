"""Explanations: IG completeness, reproducibility, every method, and the rust sanity check."""

from __future__ import annotations

import numpy as np
import pytest

from agrostress.analysis import analyse
from agrostress.explain import (
    RED_EDGE_PIGMENT,
    SWIR,
    ExplainConfig,
    attribute,
    completeness,
    explained_module,
    feature_group_mass,
    group_means,
    temporal_mass,
)
from agrostress.preprocess import feature_stack, to_pixel_array


@pytest.fixture(scope="module")
def pixels(cube, model):
    """Normalised series of 24 valid pixels of the scene and the model's call for each."""
    fs = feature_stack(cube, model.spec, model.grid, model.mask_policy,
                       regularisation=model.regularisation)
    x, _ = to_pixel_array(fs)
    x = x[:: max(1, len(x) // 24)][:24]
    return model.normalise(x), model.predict_proba(x).argmax(1)


def test_ig_completeness_within_tolerance(model, pixels):
    """Σ attributions = p_target(x) − p_target(baseline) within the stated tolerance (0.01
    probability) at 384 steps (the analysis's finest refinement), and the gap shrinks as the
    path integral gets finer."""
    x, target = pixels
    f = explained_module(model.module, float64=True)
    gaps = {}
    for steps in (8, 384):
        cfg = ExplainConfig(ig_steps=steps, float64=True)
        attr = attribute(model.module, x, target, cfg, prepared=f)
        gaps[steps] = np.abs(completeness(f, x, target, attr, cfg))
    moved = np.abs(attr.reshape(len(x), -1).sum(1))
    assert moved.max() > 1e-3  # not vacuous: the explained probabilities do move
    assert gaps[384].max() < ExplainConfig().tolerance
    assert gaps[384].mean() < gaps[8].mean()


def test_completeness_is_reported_by_the_analysis(analysed):
    comp = analysed.attributions.completeness
    assert comp["passed"] is True
    assert comp["max_abs_delta"] <= comp["tolerance"] == 0.01
    assert comp["pixels"] == len(analysed.attributions.pixels.target)


def test_pixels_missing_the_tolerance_are_refined(cube, model):
    cfg = ExplainConfig(ig_steps=2, tolerance=1e-9)
    r = analyse(cube, model, explain=True, explain_pixels=2, explain_config=cfg,
                trajectory_features=None)
    comp = r.attributions.completeness
    assert comp["refined_pixels"] == comp["pixels"] == 12
    assert comp["passed"] is False  # reported, not raised
    never = ExplainConfig(ig_steps=2, tolerance=1.0)  # nothing refined
    r2 = analyse(cube, model, explain=True, explain_pixels=2, explain_config=never,
                 trajectory_features=None)
    assert r2.attributions.completeness["refined_pixels"] == 0
    assert comp["mean_abs_delta"] < r2.attributions.completeness["mean_abs_delta"]


def test_evidence_map_is_the_exact_ig_total(analysed):
    """Per explained pixel: Σ attributions toward the call ≈ the evidence map's value there."""
    att = analysed.attributions
    px = att.pixels
    calls = analysed.classes.values[px.rows, px.cols]
    same = px.target == calls  # evidence is toward the pixel's own class
    totals = px.attributions.reshape(len(calls), -1).sum(1)[same]
    ev = att.evidence.values[px.rows, px.cols][same]
    assert same.any()
    np.testing.assert_allclose(totals, ev, atol=0.01)


def test_attributions_reproducible_for_a_seed(cube, model):
    a = analyse(cube, model, explain=True, explain_pixels=5, seed=3, trajectory_features=None)
    b = analyse(cube, model, explain=True, explain_pixels=5, seed=3, trajectory_features=None)
    c = analyse(cube, model, explain=True, explain_pixels=5, seed=4, trajectory_features=None)
    pa, pb, pc = (r.attributions.pixels for r in (a, b, c))
    np.testing.assert_array_equal(pa.rows, pb.rows)
    np.testing.assert_array_equal(pa.attributions, pb.attributions)
    assert not np.array_equal(pa.rows, pc.rows)  # another seed, another sample


@pytest.mark.parametrize("method", ["saliency", "gradientshap", "occlusion"])
def test_other_methods(model, pixels, method):
    x, target = pixels[0][:4], pixels[1][:4]
    cfg = ExplainConfig(method=method, gradientshap_samples=4, seed=1)
    a1 = attribute(model.module, x, target, cfg)
    a2 = attribute(model.module, x, target, cfg)
    assert a1.shape == x.shape and np.isfinite(a1).all() and np.abs(a1).sum() > 0
    np.testing.assert_array_equal(a1, a2)
    if method == "saliency":
        assert (a1 >= 0).all()


def test_method_is_checked(cube, model):
    with pytest.raises(ValueError, match="unknown attribution method"):
        analyse(cube, model, explain=True, method="lime")


def test_group_means_and_masses():
    attr = np.zeros((4, 3, 2))
    attr[0, 2, 0] = 1.0
    attr[1, 0, 1] = -2.0
    means, counts = group_means(attr, np.array([0, 0, 1, 1]), 3)
    assert counts.tolist() == [2, 2, 0]
    assert means[0, 2, 0] == 0.5 and means[0, 0, 1] == -1.0 and not means[2].any()
    assert temporal_mass(means[0], [60, 65, 70], 70) == (0.0, 0.5)
    assert temporal_mass(means[0], [60, 65, 70], 70, positive=False) == (1.0, 0.5)
    assert feature_group_mass(means[0], ["LCC", "B11"], RED_EDGE_PIGMENT) == 0.5
    assert feature_group_mass(means[0], ["LCC", "B11"], SWIR) == 1.0


@pytest.mark.slow
def test_rust_attributions_fall_after_onset_and_on_red_edge(cube, fields_gdf, model):
    """Simulator sanity check: over the rust fields, IG evidence for *yellow rust* per date is
    denser after the simulated rust onset than before it, and in each it lies on
    red-edge/pigment features more than on SWIR."""
    fs = feature_stack(cube, model.spec, model.grid, model.mask_policy,
                       regularisation=model.regularisation)
    fid = np.asarray(cube["field_id"].values)
    ok = ~np.asarray(fs["insufficient_data"].values)
    feats, doys = list(model.spec.names), model.grid.doys
    assert set(SWIR) & set(feats) and set(RED_EDGE_PIGMENT) & set(feats)
    rust = fields_gdf[fields_gdf["class_name"] == "yellow_rust"]
    assert len(rust) >= 2
    densities = []
    for f_id, onset in zip(rust["field_id"], rust["rust_onset"], strict=True):
        x, _ = to_pixel_array(fs, ok & (fid == f_id))
        x = x[:: max(1, len(x) // 32)][:32]
        attr = attribute(model.module, model.normalise(x), np.full(len(x), 2), ExplainConfig())
        heat = attr.mean(axis=0)
        before, after = temporal_mass(heat, doys, onset)
        n_after = int((np.asarray(doys) >= onset).sum())
        # per-date evidence: a late onset leaves few dates after it, so compare densities
        densities.append((before / (len(doys) - n_after), after / n_after))
        red_edge = feature_group_mass(heat, feats, RED_EDGE_PIGMENT)
        swir = feature_group_mass(heat, feats, SWIR)
        assert red_edge > swir, (f_id, red_edge, swir)
    # over the rust fields (onsets now vary with the crop stage, some late in the season)
    before, after = np.mean(densities, axis=0)
    assert after > before, densities


def test_uniform_patches_give_finite_attributions():
    """A 5×5 patch of identical pixels (a uniform field, a filled gap) has zero spread: its
    gradient must not be NaN (sqrt's slope at 0) — the demo's 'completeness = nan' defect."""
    import torch

    from agrostress.models import create_model

    torch.manual_seed(0)
    module = create_model("ffdnn", n_features=4, n_steps=10, context=2, channels=8, depth=1,
                          primary_types=2, primary_dim=4, class_dim=4).eval()
    x = np.repeat(np.random.default_rng(0).normal(size=(3, 10, 4, 1, 1)), 5, axis=3)
    x = np.repeat(x, 5, axis=4).astype(np.float32)  # every patch uniform
    x[2, :, :, 0, 0] += 0.5  # one patch with spread, for contrast
    cfg = ExplainConfig(ig_steps=8, float64=True)
    attr = attribute(module, x, np.array([0, 1, 2]), cfg)
    assert np.isfinite(attr).all()
    f = explained_module(module, float64=True)
    delta = completeness(f, x.astype(np.float64), np.array([0, 1, 2]), attr, cfg)
    assert np.isfinite(delta).all()
