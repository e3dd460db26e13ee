"""Operator-library tests: a fixed seed, and one intra-op thread.

The tensors here are tiny; on a shared 2-core machine OpenMP threads only add contention
(a gradcheck can slow down tenfold when another process holds a core)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_and_threads() -> Iterator[None]:
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
