"""Head locations estimated from a density map, so a person starts from points, not from nothing.

The density is a sum of blobs, one per head; its local maxima are the best single-pixel guesses.
We keep as many of them as the rounded count, strongest first. In dense crowds blobs merge and
there are fewer maxima than people: the rest go to the densest pixels not yet next to a chosen
point, so the number of points always equals the rounded count.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage


def estimate_heads(density: np.ndarray, count: float | None = None, min_distance: int = 2) -> np.ndarray:
    """(N, 2) float64 points (x, y) at pixel centres, N = round(count) (count defaults to the sum)."""
    density = np.asarray(density, dtype=np.float32)
    n = int(round(float(density.sum()) if count is None else count))
    if n <= 0 or density.size == 0 or not np.any(density > 0):
        return np.zeros((0, 2), np.float64)
    size = 2 * min_distance + 1
    smooth = ndimage.uniform_filter(density, size=3, mode="constant")
    peaks = (smooth == ndimage.maximum_filter(smooth, size=size, mode="constant")) & (smooth > 0)
    ys, xs = np.nonzero(peaks)
    order = np.argsort(-smooth[ys, xs], kind="stable")[:n]
    ys, xs = ys[order], xs[order]
    if len(ys) < n:
        # Fill from the densest pixels away from the points we have.
        taken = np.zeros(density.shape, bool)
        taken[ys, xs] = True
        taken = ndimage.binary_dilation(taken, iterations=min_distance)
        flat = np.where(taken.ravel(), -np.inf, smooth.ravel())
        k = min(n - len(ys), int(np.count_nonzero(np.isfinite(flat) & (flat > 0))))
        if k > 0:
            extra = np.argpartition(-flat, k - 1)[:k]
            ey, ex = np.unravel_index(extra, density.shape)
            ys, xs = np.concatenate([ys, ey]), np.concatenate([xs, ex])
    return np.stack([xs + 0.5, ys + 0.5], axis=1).astype(np.float64)
