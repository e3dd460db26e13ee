"""Compiled kernels follow torch's thread count and leave it as they found it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import torch

from agrostress.numba_threads import compile_serial_parallel, run_kernel


def _row_sums(a: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - compiled
    for i in numba.prange(a.shape[0]):
        out[i] = a[i].sum()


KERNELS = compile_serial_parallel(_row_sums)


def test_two_builds_one_parallel() -> None:
    serial, parallel = KERNELS
    assert not serial.targetoptions.get("parallel")
    assert parallel.targetoptions.get("parallel")
    assert serial.py_func.__name__ != parallel.py_func.__name__  # separate disk-cache entries


def test_serial_and_parallel_builds_agree() -> None:
    a = np.random.default_rng(0).normal(size=(257, 33)).astype(np.float32)
    outs = [np.empty(257, np.float32) for _ in KERNELS]
    for kernel, out in zip(KERNELS, outs, strict=True):
        kernel(a, out)
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_allclose(outs[0], a.sum(1), rtol=1e-5, atol=1e-5)


def test_run_kernel_follows_torch_threads() -> None:
    calls: list[str] = []
    kernels = (lambda: calls.append("serial"), lambda: calls.append("parallel"))
    before = torch.get_num_threads()
    try:
        for threads in (1, 2, 1):
            torch.set_num_threads(threads)
            run_kernel(kernels)
            assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)
    assert calls == ["serial", "parallel", "serial"]


def test_run_kernel_computes() -> None:
    a = np.ones((8, 4), np.float32)
    out = np.empty(8, np.float32)
    run_kernel(KERNELS, a, out)
    np.testing.assert_array_equal(out, 4.0)


def test_one_torch_thread_stays_one() -> None:
    """In a fresh process: FFDNN's neighbourhood kernel under a one-thread torch leaves
    torch on one thread (a parallel launch of numba's OpenMP pool turned it into two)."""
    code = textwrap.dedent(
        """
        import torch
        torch.set_num_threads(1)
        from agrostress.models.neighbourhood import neighbourhood_rows
        assert torch.get_num_threads() == 1
        neighbourhood_rows(torch.randn(60, 64, 64), 10, 0, 64, 2)
        print(torch.get_num_threads())
        """
    )
    env = {**os.environ, "NUMBA_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "1"
