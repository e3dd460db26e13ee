"""The Fourier unit's step-by-step profile runs and prints every step and the baseline."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "bench_fourier_stages", Path(__file__).resolve().parents[1] / "bench" / "fourier_stages.py"
)
stages_bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(stages_bench)


def test_profile_prints_every_step_and_the_baseline(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--channels", "8", "--length", "7", "--chunk", "4", "--repeats", "1", "--heap", "default"]
    assert stages_bench.main(args) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    for row in ("local convolution C -> C_l", "output epilogue", "whole chunk", "baseline",
                "merged C -> C local convolution"):
        assert any(line.startswith(f"| {row}") for line in lines), row


def test_profile_refuses_a_unit_without_local_channels() -> None:
    with pytest.raises(SystemExit, match="local channels"):
        stages_bench.main(["--channels", "8", "--length", "7", "--chunk", "4", "--repeats", "1",
                           "--heap", "default", "--ratio-global", "1.0"])
