"""Which pixels get explained: a tile-independent sample per field (or class), and their
model inputs."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def lowest_per_group(prio: np.ndarray, group: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` lowest-priority items of every group, ordered by (group, prio)."""
    order = np.lexsort((prio, group))
    g = group[order]
    rank = np.arange(g.size) - np.searchsorted(g, g, side="left")
    return order[rank < k]


@dataclass
class Candidates:
    """The ``k`` lowest-priority valid pixels per group, merged tile by tile."""

    k: int
    prio: np.ndarray = field(default_factory=lambda: np.zeros(0))
    group: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    cols: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    x: np.ndarray | None = None

    def add(self, prio: np.ndarray, group: np.ndarray, rows: np.ndarray, cols: np.ndarray,
            x: np.ndarray) -> None:
        if prio.size == 0:
            return
        cat = lambda a, b: b if a is None or a.size == 0 else np.concatenate([a, b])  # noqa: E731
        P, G = cat(self.prio, prio), cat(self.group, group)
        R, C, X = cat(self.rows, rows), cat(self.cols, cols), cat(self.x, x)
        keep = lowest_per_group(P, G, self.k)
        self.prio, self.group, self.rows, self.cols, self.x = P[keep], G[keep], R[keep], C[keep], X[keep]




def candidate_inputs(f: np.ndarray, rows: np.ndarray, cols: np.ndarray, context: int,
            window: tuple[int, int, int, int], shape: tuple[int, int]) -> np.ndarray:
    """Raw model inputs of tile pixels: (n, T, F) series or (n, T, F, P, P) patches.

    Patches are reflect-padded only at the scene border, like a single pass over the scene.
    """
    if not context:
        return np.ascontiguousarray(f[:, :, rows, cols].transpose(2, 0, 1))
    ya, yb, xa, xb = window
    ny, nx = shape
    top, left = max(0, context - ya), max(0, context - xa)
    bottom, right = max(0, context - (ny - yb)), max(0, context - (nx - xb))
    fp = np.pad(f, ((0, 0), (0, 0), (top, bottom), (left, right)), mode="reflect")
    p = 2 * context + 1
    dy, dx = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    r = rows + top - context
    c = cols + left - context
    out = fp[:, :, r[:, None, None] + dy, c[:, None, None] + dx]  # (T, F, n, P, P)
    return np.ascontiguousarray(out.transpose(2, 0, 1, 3, 4))
