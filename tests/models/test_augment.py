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


def test_joint_time_shift_keeps_pixel_and_reference_aligned():
    from agrostress.training.loop import scene_offsets

    x = torch.randn(8, 10, 3, 5, 5)
    ref = x[:, :, :, 2, 2].clone()  # the reference equals the centre pixel
    gen = torch.Generator().manual_seed(1)
    xs, rs = shift_time(x, 3, gen, ref)
    assert not torch.equal(xs, x)  # something moved …
    assert torch.equal(xs[:, :, :, 2, 2], rs)  # … by the same steps in both
    xo, ro = scene_offsets(xs, rs, 0.5, gen)
    assert not torch.allclose(xo, xs)
    # what the scene shares moved, the deviation from the reference did not
    torch.testing.assert_close(xo[:, :, :, 2, 2] - ro, xs[:, :, :, 2, 2] - rs)
    torch.testing.assert_close(xo - ro[..., None, None], xs - rs[..., None, None])


def test_training_references_follow_realistic_mixtures(tiny_cubes):
    import numpy as np

    from agrostress.training import load_training_data
    from agrostress.training.data import BUILTIN_SHARE

    data = load_training_data(tiny_cubes, "ffdnn,B04,B08", "60:200:5", reference_draws=3,
                              seed=0)
    n_ref = len(data.references)
    assert data.references.shape[1:] == (len(data.grid), len(data.spec))
    assert data.ref_index.shape == data.y.shape and data.ref_index.max() < n_ref
    builtin = (data.ref_index == n_ref - 1).mean()
    assert BUILTIN_SHARE / 2 < builtin < 0.5  # a share is judged like a field alone
    np.testing.assert_array_equal(data.builtin_reference, data.references[-1])
    sub = data.subset(np.arange(10))
    assert sub.ref_index.tolist() == data.ref_index[:10].tolist()
