"""Head locations estimated from a density map, so a person starts from points, not from nothing.

The density is a sum of blobs, one per head. Its clear local maxima (at least a quarter of the
peak of one head's 15 x 15, sigma 4 kernel) are the best single-pixel guesses; we keep as many as
the rounded count, strongest first. In dense crowds blobs merge and there are fewer maxima than
people: the rest are placed in rounds, each round taking the local maxima of the density with the
neighbourhood of every chosen point masked out, above a floor that halves every round. Dense areas
fill up first and faint background noise gets points only when the count demands it. The number of points always equals the rounded count.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

HEAD_PEAK = 1.0 / (2 * np.pi * 4.0**2)  # peak of one head's kernel (sigma 4), people per pixel
FILL_ROUNDS = 12


def _peaks(values: np.ndarray, size: int, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Local maxima above ``floor``, strongest first, no two within one ``size`` window."""
    peak = (values == ndimage.maximum_filter(values, size=size, mode="constant")) & (values > floor)
    ys, xs = np.nonzero(peak)
    order = np.argsort(-values[ys, xs], kind="stable")
    ys, xs = ys[order], xs[order]
    # Pixels of equal value next to each other (a smoothed map has such plateaus) are all local
    # maxima; they are one head, not a row of points on adjacent pixels. The first in reading
    # order stands for the plateau.
    r = size // 2
    blocked = np.zeros(values.shape, bool)
    keep = np.ones(len(ys), bool)
    for i, (y, x) in enumerate(zip(ys.tolist(), xs.tolist())):
        if blocked[y, x]:
            keep[i] = False
        else:
            blocked[max(y - r, 0):y + r + 1, max(x - r, 0):x + r + 1] = True
    return ys[keep], xs[keep]


def estimate_heads(density: np.ndarray, count: float | None = None, min_distance: int = 2) -> np.ndarray:
    """(N, 2) float64 points (x, y) at pixel centres, N = round(count) (count defaults to the sum)."""
    density = np.asarray(density, dtype=np.float32)
    n = int(round(float(density.sum()) if count is None else count))
    if n <= 0 or density.size == 0 or not np.any(density > 0):
        return np.zeros((0, 2), np.float64)
    size = 2 * min_distance + 1
    smooth = ndimage.uniform_filter(density, size=3, mode="constant")
    ys, xs = _peaks(smooth, size, 0.25 * HEAD_PEAK)
    ys, xs = ys[:n], xs[:n]
    taken = np.zeros(density.shape, bool)
    for r in range(FILL_ROUNDS):
        if len(ys) >= n:
            break
        taken[ys, xs] = True
        free = np.where(ndimage.binary_dilation(taken, iterations=min_distance), 0.0, smooth)
        floor = 0.25 * HEAD_PEAK * 0.5**r if r < FILL_ROUNDS - 1 else 0.0
        ey, ex = _peaks(free, size, floor)
        if len(ey) == 0:
            continue
        ey, ex = ey[: n - len(ys)], ex[: n - len(ys)]
        ys, xs = np.concatenate([ys, ey]), np.concatenate([xs, ex])
    if len(ys) < n:  # tiny maps: whatever pixels are left, densest first
        taken[ys, xs] = True
        flat = np.where(taken.ravel(), -np.inf, smooth.ravel())
        k = min(n - len(ys), int(np.count_nonzero(np.isfinite(flat))))
        if k > 0:
            extra = np.argpartition(-flat, k - 1)[:k]
            ey, ex = np.unravel_index(extra, density.shape)
            ys, xs = np.concatenate([ys, ey]), np.concatenate([xs, ex])
    return np.stack([xs + 0.5, ys + 0.5], axis=1).astype(np.float64)
