"""The processing-baseline offset rule and its pixel sanity check."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from agrostress.ingest.harmonise import (
    OffsetDecision,
    OffsetWarning,
    check_offset,
    harmonise,
    offset_from_metadata,
    offset_in_data,
    parse_baseline,
)


@pytest.mark.parametrize(
    ("props", "offset"),
    [
        ({"s2:processing_baseline": "03.01"}, 0.0),
        ({"s2:processing_baseline": "04.00"}, -1000.0),
        ({"s2:processing_baseline": "05.10"}, -1000.0),  # collection-1 reprocessing
        ({"s2:processing_baseline": "04.00", "earthsearch:boa_offset_applied": True}, 0.0),
        ({"s2:processing_baseline": "04.00", "earthsearch:boa_offset_applied": False}, -1000.0),
        ({"sentinel:processing_baseline": "02.14"}, 0.0),
        ({"datetime": "2021-06-01T10:00:00Z"}, 0.0),
        ({"datetime": "2023-06-01T10:00:00Z"}, -1000.0),
    ],
)
def test_metadata_rule(props: dict, offset: float) -> None:
    assert offset_from_metadata(props).offset == offset


def test_parse_baseline() -> None:
    assert parse_baseline("04.00") == 4.0
    assert parse_baseline("N0510") == 5.1
    assert parse_baseline(None) is None and parse_baseline("x") is None


def _scene(
    red_reflectance: float, with_offset: bool, n: int = 400
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    red = red_reflectance + rng.normal(0, 0.01, n).clip(-0.02, 0.02)
    dn = np.round(red * 10000 + (1000 if with_offset else 0)).reshape(20, -1)
    scl = np.full(dn.shape, 4, dtype=np.uint8)
    return dn, scl


def test_pixels_show_the_offset() -> None:
    assert offset_in_data(*_scene(0.04, True)) is True
    assert offset_in_data(*_scene(0.04, False)) is False
    dn, scl = _scene(0.04, True)
    assert offset_in_data(dn, np.full_like(scl, 9)) is None  # no vegetation: unsure
    assert offset_in_data(dn[:2, :10], scl[:2, :10]) is None  # too few pixels


def test_wrong_flag_is_corrected_with_a_warning() -> None:
    # earth-search #71: flag says the offset is still in the DN, the data say it is not
    meta = offset_from_metadata(
        {"s2:processing_baseline": "05.11", "earthsearch:boa_offset_applied": False}
    )
    dn, scl = _scene(0.04, with_offset=False)
    with pytest.warns(OffsetWarning, match="do not carry"):
        d = check_offset(meta, dn, scl, scene="S2B_33UXP_20250302_0_L2A")
    assert d.offset == 0.0 and d.corrected
    refl = harmonise(dn.astype(np.uint16), d)
    assert 0.02 < float(np.median(refl)) < 0.06
    # cirrus-geo #33: flag says applied=false, PB 04.00 ... and data carry the offset: agreed
    dn, scl = _scene(0.04, with_offset=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", OffsetWarning)
        assert check_offset(meta, dn, scl, scene="x") == meta


def test_check_can_be_disabled() -> None:
    dn, scl = _scene(0.04, with_offset=False)
    meta = OffsetDecision(-1000.0, "test")
    assert check_offset(meta, dn, scl, scene="x", enabled=False) == meta


def test_harmonise_keeps_no_data() -> None:
    dn = np.array([0, 1000, 1400, 11000], dtype=np.uint16)
    out = harmonise(dn, OffsetDecision(-1000.0, "t"))
    assert np.isnan(out[0]) and out[1] == 0 and out[2] == pytest.approx(0.04) and out[3] == 1.0
    f = np.array([np.nan, 400.0], dtype=np.float32)
    out = harmonise(f, OffsetDecision(0.0, "t"))
    assert np.isnan(out[0]) and out[1] == pytest.approx(0.04)
