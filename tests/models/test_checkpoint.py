"""Checkpoints: round trip, integrity, no pickle; training split by field; CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from agrostress.cli import app
from agrostress.cube import write_zarr
from agrostress.models import CheckpointError, ForestModel, load, save
from agrostress.training import TrainConfig, evaluate_model, field_split, train_model


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    out = {}
    for name in ("ffdnn", "random_forest"):
        cfg = TrainConfig(epochs=2, model_config={"n_estimators": 10} if name == "random_forest"
                          else {})
        m, hist = train_model(name, tiny_data, cfg)
        path = tmp_path_factory.mktemp(name) / "ckpt"
        save(m.module, m.card, path)
        out[name] = (m, path, hist)
    return out


@pytest.mark.parametrize("name", ["ffdnn", "random_forest"])
def test_round_trip_gives_identical_outputs(trained, tiny_data, name):
    m, path, _ = trained[name]
    loaded = load(path)
    x = tiny_data.x[:300]
    np.testing.assert_array_equal(m.predict_proba(x), loaded.predict_proba(x))
    assert sorted(p.name for p in path.iterdir()) == ["README.md", "card.json",
                                                      "model.safetensors"]
    card = json.loads((path / "card.json").read_text())
    for key in ("name", "version", "architecture", "config", "feature_spec", "grid",
                "normalisation", "class_names", "training", "weights_sha256"):
        assert key in card
    assert card["training"]["data_hash"] == tiny_data.data_hash


def test_image_and_pixel_predictions_agree(trained, tiny_data):
    loaded = load(trained["ffdnn"][1])
    img = np.moveaxis(tiny_data.x[:12].reshape(3, 4, 29, -1), (2, 3), (0, 1))  # (T, F, 3, 4)
    by_image = loaded.predict_proba_image(img)
    by_pixel = loaded.predict_proba(tiny_data.x[:12])
    np.testing.assert_allclose(by_image.reshape(3, -1).T, by_pixel, atol=1e-6)


def test_forest_export_equals_sklearn(tiny_data):
    from sklearn.ensemble import RandomForestClassifier

    x, y = tiny_data.x[:400], tiny_data.y[:400]
    ours = ForestModel.fit(x, y, n_estimators=5, seed=3, class_weight=None)
    ref = RandomForestClassifier(n_estimators=5, max_depth=16, random_state=3, n_jobs=2,
                                 min_samples_leaf=2).fit(x.reshape(len(x), -1), y)
    np.testing.assert_allclose(ours.predict_proba(x), ref.predict_proba(x.reshape(len(x), -1)),
                               atol=1e-12)
    np.testing.assert_array_equal(ours.predict_proba(x), ours.predict_proba_np(x))  # compiled


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_tampered_weights_are_refused(trained, tmp_path):
    bad = _copy(trained["ffdnn"][1], tmp_path / "bad")
    blob = bytearray((bad / "model.safetensors").read_bytes())
    blob[-5] ^= 0xFF
    (bad / "model.safetensors").write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="modified or is corrupt"):
        load(bad)


def test_corrupt_card_and_missing_files_are_refused(trained, tmp_path):
    bad = _copy(trained["ffdnn"][1], tmp_path / "bad")
    (bad / "card.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load(bad)
    card = json.loads((trained["ffdnn"][1] / "card.json").read_text())
    card["feature_spec"] = card["feature_spec"][:-1]
    (bad / "card.json").write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="features but n_features"):
        load(bad)
    (bad / "card.json").write_text(json.dumps({"format": "agrostress-model/1"}))
    with pytest.raises(CheckpointError, match="lacks"):
        load(bad)
    with pytest.raises(CheckpointError, match="not a model checkpoint"):
        load(tmp_path / "nowhere")


def test_pickle_file_is_not_loaded(trained, tmp_path):
    """A checkpoint whose weights were swapped for a pickle is refused before reading it."""
    bad = _copy(trained["ffdnn"][1], tmp_path / "bad")
    torch.save({"x": torch.zeros(1)}, bad / "model.safetensors")
    with pytest.raises(CheckpointError):
        load(bad)


def test_no_torch_load_in_the_code_base():
    root = Path(__file__).resolve().parents[2]
    offenders = [str(p) for d in ("agrostress", "api", "pipelines") if (root / d).exists()
                 for p in (root / d).rglob("*.py") if "torch.load(" in p.read_text()]
    assert offenders == []


def test_field_split_never_shares_a_field(tiny_data):
    tr, va = field_split(tiny_data.field_key, tiny_data.y, 0.3, seed=1)
    assert set(tiny_data.field_key[tr]).isdisjoint(tiny_data.field_key[va])
    assert len(tr) + len(va) == len(tiny_data.y)
    assert set(tiny_data.y[va]) == {0, 1, 2}  # stratified by the fields' class


def test_training_is_deterministic(tiny_data):
    a, _ = train_model("ffdnn", tiny_data, TrainConfig(epochs=1, seed=5))
    b, _ = train_model("ffdnn", tiny_data, TrainConfig(epochs=1, seed=5))
    np.testing.assert_array_equal(a.predict_proba(tiny_data.x[:50]),
                                  b.predict_proba(tiny_data.x[:50]))


def test_evaluate_reports_pixel_field_and_insufficient(trained, tiny_cubes):
    report = evaluate_model(load(trained["ffdnn"][1]), [tiny_cubes[0]])
    for level in ("pixel", "field"):
        for key in ("overall_accuracy", "kappa", "macro_f1", "per_class", "confusion", "ece"):
            assert key in report[level]
        assert np.array(report[level]["confusion"]).shape == (3, 3)
    assert report["field"]["n"] == 6
    assert report["insufficient_data"]["pixels"] >= 0


def test_insufficient_pixels_are_not_scored(trained, tiny_cubes):
    ds = tiny_cubes[0].copy(deep=True)
    ds["scl"] = ds.scl.where(ds.x >= ds.x[10], 9).astype("uint8")  # always cloudy on the left
    report = evaluate_model(load(trained["ffdnn"][1]), [ds])
    left = (ds.label.values >= 0) & (ds.x.values[None, :] < ds.x.values[10])
    labelled = int((ds.label.values >= 0).sum())
    assert report["insufficient_data"]["pixels"] >= int(left.sum())  # + cloud dilation
    assert report["pixel"]["n"] + report["insufficient_data"]["pixels"] == labelled


def test_cli_train_and_evaluate(tiny_cubes, tmp_path):
    paths = []
    for i, ds in enumerate(tiny_cubes):
        paths.append(write_zarr(ds, tmp_path / f"c{i}.zarr"))
    runner = CliRunner()
    res = runner.invoke(app, ["train", "--model", "ffdnn", "--cube", str(paths[0]), "--cube",
                              str(paths[1]), "--out", str(tmp_path / "m"), "--epochs", "1"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["evaluate", "--model", str(tmp_path / "m"), "--cube",
                              str(paths[1]), "--json", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert set(report) >= {"pixel", "field", "abstention", "priors"}
    assert "overall_accuracy" in report["field"]
    assert report["priors"] == pytest.approx(dict.fromkeys(report["priors"], 1 / 3))
    ab = report["abstention"]
    assert 0 <= ab["field"]["coverage"] <= 1 and "fields called" in res.output
    curve = [c["coverage"] for c in ab["field_curve"]]
    assert curve == sorted(curve, reverse=True)  # a stricter threshold calls fewer fields


def test_cli_evaluate_rejects_mismatched_cube(trained, tiny_cubes, tmp_path):
    ds = tiny_cubes[0].sel(band=[b for b in tiny_cubes[0].band.values if b != "B05"])
    path = tmp_path / "bad.zarr"
    ds.drop_encoding().to_zarr(path, zarr_format=2)
    res = CliRunner().invoke(app, ["evaluate", "--model", str(trained["ffdnn"][1]), "--cube",
                                   str(path)])
    assert res.exit_code == 2
    assert "B05" in res.output


def test_training_description_names_first_and_last_cubes():
    from agrostress.training.data import describe_cubes

    assert describe_cubes(["a.zarr", "b.zarr"]) == "2 cube(s): a.zarr; b.zarr"
    many = describe_cubes([f"train_{i}.zarr" for i in range(160)])
    assert many.startswith("160 cube(s): train_0.zarr;") and many.endswith("; train_159.zarr")
    assert "154 more" in many and "train_80.zarr" not in many
