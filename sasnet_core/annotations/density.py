"""Ground-truth density maps from head points.

Fixed mode reproduces the released SASNet preprocessing (``prepare_dataset.py``) to rounding
error, quirks included, because the released checkpoints were trained on exactly those targets:

- each point is floored and read as a 1-based MATLAB pixel (``x = 5.7`` lands on 0-based column 4);
- ``abs`` is applied before clamping, and the point is then clamped onto the image, so a point
  off the image lands on its border;
- near a border the kernel is not a crop of the 15 x 15 one but a *fresh*, smaller Gaussian,
  centred on the remaining window and normalised to 1 (so its peak shifts away from the point).

Points and "inside the image": with ``drop_outside=True`` (the default) points off the image are
dropped first, so the map sums to the number of points on the image. A point counts as on the image
when ``0 <= x < w + 1`` and ``0 <= y < h + 1``: that is every point the released code places
without moving it by a pixel or more, under either reading of the coordinates (0-based, or
MATLAB 1-based as ShanghaiTech and UCF use; UCF_CC_50 holds points at x = w + 0.26). For these
points the map equals the released one exactly. ``drop_outside=False`` keeps every point and gives
the released output for all input, including the odd ones (negative -> abs, far off -> border).

Adaptive mode is the geometry-adaptive kernel of MCNN (Zhang et al., CVPR 2016) as CSRNet's
script uses it: sigma_i = beta * mean distance to the k nearest other heads (beta = 0.3, k = 3),
a lone head gets sigma = mean(H, W) / 4. Unlike that script each kernel is renormalised inside the
image, so here too every head adds exactly 1. Points are placed 0-based (pixel floor(x)).
"""
from __future__ import annotations

import numpy as np


def matlab_style_gauss2D(shape=(3, 3), sigma=0.5) -> np.ndarray:
    """MATLAB ``fspecial('gaussian', shape, sigma)``, as the released script builds it."""
    m, n = [(ss - 1.0) / 2.0 for ss in shape]
    y, x = np.ogrid[-m : m + 1, -n : n + 1]
    h = np.exp(-(x * x + y * y) / (2.0 * sigma * sigma))
    h[h < np.finfo(h.dtype).eps * h.max()] = 0
    s = h.sum()
    if s != 0:
        h /= s
    return h


def inside_image(points: np.ndarray, shape) -> np.ndarray:
    """(N,) bool: points on an image of ``shape`` (H, W, ...), by the rule in the module doc."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    h, w = int(shape[0]), int(shape[1])
    x, y = pts[:, 0], pts[:, 1]
    return (x >= 0) & (y >= 0) & (x < w + 1) & (y < h + 1)


def density_map(
    points,
    shape,
    sigma: float = 4.0,
    kernel_size: int = 15,
    adaptive: bool = False,
    *,
    drop_outside: bool = True,
    k: int = 3,
    beta: float = 0.3,
) -> np.ndarray:
    """(H, W) float64 density map; sums to the number of points kept (see module doc)."""
    h, w = int(shape[0]), int(shape[1])
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    if not np.isfinite(pts).all():
        raise ValueError("points contain NaN or infinity")
    if drop_outside:
        pts = pts[inside_image(pts, (h, w))]
    if h <= 0 or w <= 0 or len(pts) == 0:
        return np.zeros((max(h, 0), max(w, 0)), np.float64)
    if adaptive:
        return _adaptive(pts, h, w, k=k, beta=beta)
    if kernel_size < 1 or kernel_size % 2 == 0:
        # The released indexing (x - f//2 .. x + f//2) only fits odd sizes.
        raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
    return _fixed(pts, h, w, kernel_size, sigma)


def _fixed(pts: np.ndarray, h: int, w: int, f: int, sigma: float) -> np.ndarray:
    # Same integer arithmetic as the released loop, for all points at once (1-based windows).
    x = np.minimum(w, np.maximum(1, np.abs(np.floor(pts[:, 0]).astype(np.int64))))
    y = np.minimum(h, np.maximum(1, np.abs(np.floor(pts[:, 1]).astype(np.int64))))
    r = f // 2
    x1, y1, x2, y2 = x - r, y - r, x + r, y + r
    rows = f - np.where(y1 < 1, 1 - y1, 0) - np.maximum(y2 - h, 0)  # kernel height after crop
    cols = f - np.where(x1 < 1, 1 - x1, 0) - np.maximum(x2 - w, 0)
    top, left = np.maximum(y1, 1) - 1, np.maximum(x1, 1) - 1  # 0-based window corner

    dens = np.zeros((h, w), np.float64)
    # A Gaussian kernel is the outer product of two 1-D ones (also after MATLAB's eps cut, as
    # long as that cut removes nothing, checked here). Points whose window keeps all f columns
    # (all but those near the left and right edges) are done in two passes: scatter each
    # point's column kernel (f values, cropped at the top/bottom edge as released), then one
    # horizontal filter. That scatters 15x fewer values than whole 2-D kernels. (Horizontal,
    # not vertical: a filter along rows is contiguous in memory, and along columns it thrashes
    # the cache on the common 1024-pixel-wide images.)
    sep = (cols == f) & (w >= f)
    if sep.any() and (matlab_style_gauss2D((f, f), sigma) > 0).all():
        from scipy.ndimage import correlate1d

        gx = matlab_style_gauss2D((1, f), sigma).ravel()
        idx, wts = _scatter_lists(rows[sep], top[sep] * w + left[sep] + r,
                                  lambda kr: matlab_style_gauss2D((kr, 1), sigma), w)
        colsum = np.bincount(idx, wts, minlength=h * w).reshape(h, w)
        c0, c1 = int(left[sep].min()), int(left[sep].max()) + f  # columns the kernels reach
        correlate1d(colsum[:, c0:c1], gx, axis=1, output=dens[:, c0:c1], mode="constant")
    else:
        sep[:] = False
    rest = ~sep
    if rest.any():
        # Border points share a handful of crop shapes: one fresh kernel per shape, as released.
        key = rows[rest] * (f + 1) + cols[rest]
        idx, wts = _scatter_lists(key, top[rest] * w + left[rest],
                                  lambda kk: matlab_style_gauss2D(divmod(kk, f + 1), sigma), w)
        np.add.at(dens.reshape(-1), idx, wts)  # few values: no full-size temporary
    return dens


def _scatter_lists(keys, base, kernel_for, w):
    """Flat indices and weights that add ``kernel_for(key)`` at each flat corner in ``base``."""
    idx, wts = [], []
    for kk in np.flatnonzero(np.bincount(keys)):  # keys are small: cheaper than np.unique
        sel = keys == kk
        kern = kernel_for(int(kk))
        offsets = (np.arange(kern.shape[0])[:, None] * w + np.arange(kern.shape[1])).ravel()
        idx.append((base[sel][:, None] + offsets).ravel())
        wts.append(np.tile(kern.ravel(), int(sel.sum())))
    return np.concatenate(idx), np.concatenate(wts)


def adaptive_sigmas(pts: np.ndarray, shape, k: int = 3, beta: float = 0.3) -> np.ndarray:
    """Per-head sigma: beta * mean distance to the k nearest other heads (MCNN)."""
    n = len(pts)
    if n == 0:
        return np.zeros(0)
    if n == 1:
        return np.array([float(np.mean(shape[:2])) / 4.0])  # CSRNet's choice for a lone head
    from scipy.spatial import cKDTree

    kk = min(k, n - 1)
    dist, _ = cKDTree(pts).query(pts, k=kk + 1)  # first neighbour is the point itself
    sig = beta * dist[:, 1:].mean(axis=1)
    # Duplicate clicks give distance 0; keep a kernel at least about a pixel wide.
    return np.maximum(sig, 0.5)


def _adaptive(pts: np.ndarray, h: int, w: int, k: int, beta: float, truncate: float = 3.0):
    sig = adaptive_sigmas(pts, (h, w), k, beta)
    cx = np.clip(np.floor(pts[:, 0]).astype(np.int64), 0, w - 1)
    cy = np.clip(np.floor(pts[:, 1]).astype(np.int64), 0, h - 1)
    rad = np.ceil(truncate * sig).astype(np.int64)
    dens = np.zeros((h, w), np.float64)
    # The Gaussian is separable and so is its crop to the image: normalising each 1-D factor
    # inside the image makes the 2-D kernel sum to exactly 1 there. Heads are looped, but each
    # costs one outer product on its own window, never a pass over the whole image.
    for i in np.argsort(rad, kind="stable"):
        r, s = int(rad[i]), float(sig[i])
        x0, x1 = max(cx[i] - r, 0), min(cx[i] + r + 1, w)
        y0, y1 = max(cy[i] - r, 0), min(cy[i] + r + 1, h)
        gx = np.exp(-((np.arange(x0, x1) - cx[i]) ** 2) / (2 * s * s))
        gy = np.exp(-((np.arange(y0, y1) - cy[i]) ** 2) / (2 * s * s))
        dens[y0:y1, x0:x1] += np.outer(gy / gy.sum(), gx / gx.sum())
    return dens
