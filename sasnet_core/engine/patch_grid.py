"""The patch grid of a prediction: which k x k patch lies where, its selected level and the people
in it. One owner for both result types: ``Prediction`` (full-size maps) and ``CountResult`` (a
density that may be shrunk for display) are ``PatchGrid``s, and the uncertainty scores sum their
patches here too, so a patch's count is the same number whichever object is asked.

Patch edges are in image pixels. The density may live on a smaller grid than the image (the app
keeps it at most ``counting.DISPLAY_SIDE`` pixels on its long side): the edges are mapped onto
that grid and rounded, and every density pixel belongs to exactly one patch, so the patch counts
sum to the count.
"""
from __future__ import annotations

import numpy as np


def patch_edges(n_pixels: int, n_cells: int) -> np.ndarray:
    """(n_cells + 1,) pixel edges of ``n_cells`` patches over ``n_pixels`` pixels."""
    # Nearest upsampling from n_cells to n_pixels maps pixel p to cell floor(p * n_cells / n_pixels).
    return np.ceil(np.arange(n_cells + 1) * n_pixels / n_cells).astype(np.int64)


def patch_cell(patch_rows: np.ndarray, patch_cols: np.ndarray, x: float, y: float) -> tuple[int, int] | None:
    """(row, col) of the patch cell under image point (x, y), or None outside the grid."""
    i = int(np.searchsorted(patch_rows, y, side="right")) - 1
    j = int(np.searchsorted(patch_cols, x, side="right")) - 1
    if 0 <= i < len(patch_rows) - 1 and 0 <= j < len(patch_cols) - 1:
        return i, j
    return None


def segment_sums(a: np.ndarray, edges: np.ndarray, axis: int) -> np.ndarray:
    """Sums (float64) of ``a`` between consecutive ``edges`` along ``axis`` (0 for an empty segment)."""
    n = a.shape[axis]
    edges = np.clip(np.asarray(edges, np.int64), 0, n)
    a = np.take(a, np.arange(int(edges[-1])), axis=axis) if edges[-1] < n else a
    if a.shape[axis] == 0:
        shape = list(a.shape)
        shape[axis] = len(edges) - 1
        return np.zeros(shape, np.float64)
    starts = np.minimum(edges[:-1], a.shape[axis] - 1)
    sums = np.add.reduceat(a, starts, axis=axis, dtype=np.float64)
    empty = edges[1:] <= edges[:-1]
    if empty.any():
        index = [slice(None)] * a.ndim
        index[axis] = empty
        sums[tuple(index)] = 0.0
    return sums


def grid_edges(result, density_shape) -> tuple[np.ndarray, np.ndarray]:
    """The patch edges of ``result`` (any object with ``patch_rows``, ``patch_cols`` and maybe
    ``image_size``) on a density grid of ``density_shape`` (which may be smaller than the image)."""
    rows, cols = np.asarray(result.patch_rows, np.float64), np.asarray(result.patch_cols, np.float64)
    size = getattr(result, "image_size", None)
    if size is not None:
        rows = rows * density_shape[0] / size[1]
        cols = cols * density_shape[1] / size[0]
    return np.round(rows).astype(np.int64), np.round(cols).astype(np.int64)


def patch_sums(result, density: np.ndarray) -> np.ndarray:
    """(gh, gw), or (L, gh, gw): ``density`` ((H, W) or (L, H, W) on ``result``'s density grid)
    summed per patch of ``result``'s grid."""
    d = np.asarray(density)
    rows, cols = grid_edges(result, d.shape[-2:])
    return segment_sums(segment_sums(d, rows, d.ndim - 2), cols, d.ndim - 1)


class PatchGrid:
    """What a result with ``density``, ``confidence`` (5, gh, gw), ``patch_rows``, ``patch_cols``
    and ``image_size`` says about its patches."""

    @property
    def level_map(self) -> np.ndarray:
        """(gh, gw) uint8: the selected level of every patch, 1..5 for P1..P5."""
        return (self.confidence.argmax(0) + 1).astype(np.uint8)

    def patch_at(self, x: float, y: float) -> tuple[int, int] | None:
        """(row, col) of the patch under image point (x, y), or None outside the grid."""
        return patch_cell(self.patch_rows, self.patch_cols, x, y)

    def levels_of(self, points: np.ndarray) -> np.ndarray:
        """(N,) uint8 level 1..5 of the patch under each point (0 off the grid)."""
        points = np.asarray(points, np.float64).reshape(-1, 2)
        if len(points) == 0:
            return np.zeros(0, np.uint8)
        i = np.searchsorted(self.patch_rows, points[:, 1], side="right") - 1
        j = np.searchsorted(self.patch_cols, points[:, 0], side="right") - 1
        ok = (i >= 0) & (i < len(self.patch_rows) - 1) & (j >= 0) & (j < len(self.patch_cols) - 1)
        out = np.zeros(len(points), np.uint8)
        out[ok] = self.level_map[i[ok], j[ok]]
        return out

    def patch_counts(self) -> np.ndarray:
        """(gh, gw) people in every patch, from the fused density."""
        return patch_sums(self, self.density)

    def patch_count(self, i: int, j: int) -> float:
        """People in patch (i, j): one cell of ``patch_counts`` (the same edges), without summing
        every other patch (the canvas asks on every mouse move)."""
        rows, cols = grid_edges(self, self.density.shape)
        return float(self.density[rows[i]:rows[i + 1], cols[j]:cols[j + 1]].sum(dtype=np.float64))
