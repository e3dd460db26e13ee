"""The operator benchmark's run order: every variant follows every other one equally often."""

from __future__ import annotations

import importlib.util
from itertools import pairwise
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "bench_ops", Path(__file__).resolve().parents[1] / "bench" / "ops.py"
)
bench_ops = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench_ops)


@pytest.mark.parametrize("n", [2, 4, 6, 8])
def test_balanced_orders(n: int) -> None:
    items = [f"v{i}" for i in range(n)]
    orders = bench_ops.balanced_orders(items)
    assert all(sorted(row) == items for row in orders)  # each row runs every variant once
    pairs = [p for row in orders for p in pairwise(row)]
    assert len(set(pairs)) == len(pairs) == n * (n - 1)  # every ordered pair exactly once


def test_balanced_orders_needs_even_count() -> None:
    with pytest.raises(ValueError):
        bench_ops.balanced_orders(["a", "b", "c"])
