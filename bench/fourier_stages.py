"""Where one chunk of the Fourier unit's CPU inference path spends its time.

    python bench/fourier_stages.py                      # C=64, L=29, 512-sample chunk, 1 thread
    python bench/fourier_stages.py --length 96 --threads 2 --heap default

Times each step of ``FourierConv._infer_chunk`` (dense path, eval mode, no grad) on its own
(median of ``--repeats``, output buffers reused), then the whole chunk as shipped and, as the
baseline in the same run, the naive FFC reference (``fourier_reference``) on the same chunk.
A second table times the formulations not shipped against the steps they would replace
(which one wins depends on the CPU: rerun it on a new host).
The per-step sum is lower than the whole chunk: run alone, every step finds its inputs in
cache. Prints a table; nothing is written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

_HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(_HERE.parent), str(_HERE)]  # the package, and bench/ops.py

from ops import _timeit, cpu_model, warm_heap  # noqa: E402  (bench/ops.py)

from agrostress.ops import FourierConv, create_op, fourier_reference  # noqa: E402
from agrostress.ops._common import rdft_matrices  # noqa: E402
from agrostress.ops._epilogues import bias_relu_, relu_local_global  # noqa: E402

Step = Callable[[], object]


def stages(
    m: FourierConv, x: torch.Tensor, w: dict[str, torch.Tensor | None]
) -> tuple[dict[str, Step], dict[str, tuple[tuple[str, ...], Step]]]:
    """The steps of ``_infer_chunk`` (dense path, ReLU, local channels) as separate calls,
    with the eval-mode weights ``w`` of ``m._inference_weights()``; and the formulations
    not shipped, each with the steps it would replace (which wins depends on the CPU:
    oneDNN's and MKL's kernels differ by vendor)."""
    n, cl, h, pad = x.shape[0], m.c_l, m.hidden, m.kernel_size // 2
    length = x.shape[-1]
    fwd, inv = rdft_matrices(length, m.n_fft(length), x.device, x.dtype)
    nf = m.n_fft(length) // 2 + 1
    s = torch.matmul(w["w_in"], x[:, cl:])
    z = (s @ fwd).view(n, 2 * h, nf)
    z2 = F.conv1d(z, w["w_spec"])
    u = z2.view(n, h, 2 * nf) @ inv
    g = torch.matmul(w["w_out"], u)
    local_l = F.conv1d(x, w["w_l"], w["b_l"], padding=pad)
    local_g = F.conv1d(x[:, :cl], w["w_lg"], w["b_lg"], padding=pad)
    out = torch.empty_like(x)
    shipped: dict[str, Step] = {
        "1x1 in (matmul)": lambda: torch.matmul(w["w_in"], x[:, cl:]),
        "bias + ReLU (s)": lambda: bias_relu_(s, w["b_in"]),
        "DFT (matmul)": lambda: torch.matmul(s, fwd),
        "spectral 1x1 (conv1d)": lambda: F.conv1d(z, w["w_spec"]),
        "bias + ReLU (spectrum)": lambda: bias_relu_(z2, w["b_spec"]),
        "inverse DFT (matmul)": lambda: torch.matmul(z2.view(n, h, 2 * nf), inv),
        "u + s": lambda: u.add_(s),
        "1x1 out (matmul)": lambda: torch.matmul(w["w_out"], u),
        "local convolution C -> C_l": lambda: F.conv1d(x, w["w_l"], w["b_l"], padding=pad),
        "local convolution C_l -> C_g": lambda: F.conv1d(
            x[:, :cl], w["w_lg"], w["b_lg"], padding=pad
        ),
        "output epilogue": lambda: relu_local_global(local_l, local_g, g, out),
    }
    w_in = w["w_in"][..., None]  # type: ignore[index]
    w_local, b_local = m._merged_local(w)
    others: dict[str, tuple[tuple[str, ...], Step]] = {
        "merged C -> C local convolution (zero block)": (
            ("local convolution C -> C_l", "local convolution C_l -> C_g"),
            lambda: F.conv1d(x, w_local, b_local, padding=pad),
        ),
        "spectral 1x1 (batched matmul)": (
            ("spectral 1x1 (conv1d)",),
            lambda: torch.matmul(w["w_spec"][..., 0], z),
        ),
        "1x1 in (conv1d)": (("1x1 in (matmul)",), lambda: F.conv1d(x[:, cl:], w_in)),
    }
    return shipped, others


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--length", type=int, default=29)
    ap.add_argument("--chunk", type=int, default=512, help="samples per chunk")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=60)
    ap.add_argument("--ratio-global", type=float, default=0.5)
    ap.add_argument("--heap", choices=("default", "warm"), default="warm")
    args = ap.parse_args(argv)
    m = create_op(
        "fourier",
        channels=args.channels,
        length=args.length,
        path="dense",
        ratio_global=args.ratio_global,
    ).eval()
    if not isinstance(m, FourierConv) or not m.c_l:
        raise SystemExit("the profile needs a Fourier unit with local channels (ratio_global < 1)")
    if args.heap == "warm":
        warm_heap()
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        profile(m, args)
    finally:
        torch.set_num_threads(threads)
    return 0


def profile(m: FourierConv, args: argparse.Namespace) -> None:
    """Time the steps, the whole chunk and the naive reference; print the table."""
    torch.manual_seed(0)
    x = torch.randn(args.chunk, args.channels, args.length)
    rows: list[tuple[str, float]] = []
    with torch.no_grad():
        w = m._inference_weights()
        shipped, others = stages(m, x, w)
        for name, fn in shipped.items():
            rows.append((name, _timeit(fn, args.repeats)["median"]))
        steps = sum(t for _, t in rows)
        alt = [(name, replaces, _timeit(fn, args.repeats)["median"])
               for name, (replaces, fn) in others.items()]
        out = torch.empty_like(x)
        whole = _timeit(lambda: m._infer_chunk(x, w, "dense", out), args.repeats)["median"]
        naive = _timeit(lambda: fourier_reference(m, x), args.repeats)["median"]
    print(
        f"Fourier unit, one {args.chunk}-sample chunk: C={args.channels}, L={args.length}, "
        f"{args.threads} thread(s), {args.heap} heap, torch {torch.__version__}, {cpu_model()}\n"
    )
    print("| step | ms | share of the steps |")
    print("|---|---|---|")
    for name, t in rows:
        print(f"| {name} | {t:.3f} | {100 * t / steps:.0f} % |")
    print(f"| sum of the steps | {steps:.3f} | |")
    print(f"| whole chunk (`_infer_chunk`) | {whole:.3f} | |")
    print(f"| baseline: naive FFC reference, same chunk | {naive:.3f} | {naive / whole:.2f}x the chunk |")
    times = dict(rows)
    print("\n| not shipped: alternative | ms | instead of | ms |")
    print("|---|---|---|---|")
    for name, replaces, t in alt:
        base = sum(times[r] for r in replaces)
        print(f"| {name} | {t:.3f} | {' + '.join(replaces)} | {base:.3f} |")


if __name__ == "__main__":
    raise SystemExit(main())
