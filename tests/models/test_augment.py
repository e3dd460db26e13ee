"""Training augmentation."""

from __future__ import annotations

import torch

from agrostress.training.loop import class_weights, shift_time


def test_time_shift_moves_whole_series_and_repeats_edges():
    x = torch.arange(20, dtype=torch.float32).view(4, 5, 1).repeat(1, 1, 3)
    out = shift_time(x, 2, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    for b in range(4):
        row = out[b, :, 0]
        diffs = torch.diff(row)
        assert set(diffs.tolist()) <= {0.0, 1.0}  # order kept, only edge repeats
        assert (out[b] == out[b, :, :1]).all()  # every feature shifted alike
        shift = int(row[2] - x[b, 2, 0])
        assert -2 <= shift <= 2


def test_time_shift_on_patches():
    x = torch.randn(3, 6, 2, 3, 3)
    out = shift_time(x, 0, torch.Generator().manual_seed(0))
    assert torch.equal(out, x)


def test_class_weights_balance_counts():
    w = class_weights(torch.tensor([0, 0, 0, 1]).numpy(), 3)
    assert w[2] == 0 and w[1] == 3 * w[0]
