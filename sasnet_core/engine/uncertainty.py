"""Where a prediction is unsure: a score per k x k patch (32 x 32 pixels) and per image, from the
prediction alone.

SASNet weighs five feature levels in every patch (the confidence maps). Where it cannot choose a
scale, the weights are flat and the count of that patch is least reliable; where it is sure, one
level dominates. The absolute error of a patch also grows with the number of people in it, so a
score that predicts error needs that magnitude as well.

The default score (``DEFAULT_METHOD = "count_entropy"``) of patch (i, j) is

    score[i, j] = c[i, j] * e[i, j]          in people
    e[i, j]     = clip((H[i, j] / ln 5 - H_min) / (1 - H_min), 0, 1)
    H[i, j]     = -sum_l w_l[i, j] ln w_l[i, j]   (w: the five level weights, l = P1..P5)

where c is the fused count of the patch (the density summed over its pixels), H the entropy of
its level weights and H_min = 0.932, the normalised entropy of the most decided weights the
released model can give: its weights are a softmax of sigmoids, so a patch whose level scores
are (1, 0, 0, 0, 0) still has weights (e, 1, 1, 1, 1) / (e + 4). Without that rescaling every
patch of a real prediction would score between 0.93 and 1 and the entropy would add nothing to
the count. e is 1 for flat weights and 0 for one dominant level.

The image score is the sum of its patch scores: the people counted where the model could not
choose a scale (at most the count).

The default was chosen because it needs only what every prediction carries (the fused density
and the confidence maps; the count path drops the per-level densities to save memory), and
because absolute error scales with the count. ``benchmarks/bench_uncertainty.py`` compares it
with the other candidates of ``METHODS`` (Spearman correlation with the patch's absolute error,
simulated review); only a trained model's figures can confirm or replace the choice.

Candidates (all (gh, gw) arrays on the patch grid):

- ``entropy``: e above, unitless in [0, 1];
- ``spread``: the standard deviation of the five per-level patch counts, in people (needs the
  per-level densities: ``Predictor(keep_levels=True)``);
- ``count``: the fused patch count c alone (the baseline the others must beat);
- ``count_entropy``: c * e (the default).

For annotated images, ``annotated_patch_error`` gives |model count - annotated heads| per patch.
Predictions of the app's file queue (``CountResult``, density maybe shrunk) work as well as a
``Prediction``: only ``density``, ``confidence``, ``patch_rows``, ``patch_cols``, ``image_size``
(and ``level_densities`` for ``spread``) are read.
"""
from __future__ import annotations

import math

import numpy as np

from sasnet_core.engine.patch_grid import patch_sums, segment_sums

LEVELS = 5
# Normalised entropy of softmax(sigmoid(scores)) for scores (1, 0, 0, 0, 0): the floor of the release.
_DECIDED = np.array([math.e, 1, 1, 1, 1]) / (math.e + 4)
ENTROPY_FLOOR = float(-(_DECIDED * np.log(_DECIDED)).sum() / math.log(LEVELS))

METHODS = ("count_entropy", "entropy", "spread", "count")
DEFAULT_METHOD = "count_entropy"
REVIEW_CELL = 4  # patches per side of a review cell (4 x 4 patches = 128 x 128 pixels)


def level_entropy(confidence: np.ndarray) -> np.ndarray:
    """(gh, gw) in [0, 1]: 1 where the five level weights are flat, 0 where one level dominates
    (as far as the release's softmax of sigmoids allows, see the module docstring)."""
    w = np.asarray(confidence, np.float64)
    if w.ndim != 3 or w.shape[0] != LEVELS:
        raise ValueError(f"confidence must be ({LEVELS}, h, w), got shape {w.shape}")
    # Weights that are not numbers (damaged confidence heads) say nothing: such a patch is unsure.
    broken = ~np.isfinite(w).all(0)
    w = np.clip(np.where(broken, 1.0, w), 0.0, None)
    total = w.sum(0, keepdims=True)
    w = np.divide(w, total, out=np.full_like(w, 1.0 / LEVELS), where=total > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(w > 0, w * np.log(w), 0.0).sum(0) / math.log(LEVELS)
    return np.clip((h - ENTROPY_FLOOR) / (1.0 - ENTROPY_FLOOR), 0.0, 1.0)


def patch_counts(pred) -> np.ndarray:
    """(gh, gw) people in every patch, from the fused density (``patch_grid``, as the result's
    own ``patch_counts``)."""
    return patch_sums(pred, pred.density)


def level_spread(pred) -> np.ndarray:
    """(gh, gw) standard deviation of the five per-level counts of every patch, in people."""
    levels = getattr(pred, "level_densities", None)
    if levels is None:
        raise ValueError("the 'spread' score needs the per-level densities: "
                         "predict with keep_levels=True")
    return patch_sums(pred, levels).std(axis=0)


def patch_scores(pred, method: str = DEFAULT_METHOD) -> np.ndarray:
    """(gh, gw) uncertainty of every patch of ``pred`` by ``method`` (one of ``METHODS``)."""
    if method == "entropy":
        return level_entropy(pred.confidence)
    if method == "spread":
        return level_spread(pred)
    if method == "count":
        return patch_counts(pred)
    if method == "count_entropy":
        return np.clip(patch_counts(pred), 0.0, None) * level_entropy(pred.confidence)
    raise ValueError(f"unknown uncertainty method {method!r}; known: {', '.join(METHODS)}")


def image_score(pred, method: str = DEFAULT_METHOD) -> float:
    """The uncertainty of the whole image: the sum of its patch scores."""
    return float(np.asarray(patch_scores(pred, method), np.float64).sum())


def points_per_patch(pred, points: np.ndarray) -> np.ndarray:
    """(gh, gw) annotated heads in every patch; points off the grid are not counted."""
    rows, cols = np.asarray(pred.patch_rows, np.float64), np.asarray(pred.patch_cols, np.float64)
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    hist, _, _ = np.histogram2d(pts[:, 1], pts[:, 0], bins=(rows, cols))
    return hist


def annotated_patch_error(pred, points: np.ndarray) -> np.ndarray:
    """(gh, gw) |model count - annotated heads| of every patch."""
    return np.abs(patch_counts(pred) - points_per_patch(pred, points))


def cell_sums(patch_map: np.ndarray, cell: int = REVIEW_CELL) -> np.ndarray:
    """(ceil(gh / cell), ceil(gw / cell)): a patch map summed over review cells of cell x cell
    patches (the cells at the right and bottom edges may hold fewer)."""
    if cell < 1:
        raise ValueError(f"cell must be at least 1 patch, got {cell}")
    m = np.asarray(patch_map, np.float64)
    return segment_sums(segment_sums(m, _cell_edges(m.shape[0], cell), 0),
                         _cell_edges(m.shape[1], cell), 1)


def _cell_edges(n: int, cell: int) -> np.ndarray:
    return np.minimum(np.arange(0, n + cell, cell), n)[: -(-n // cell) + 1]


def review_order(pred, grid: tuple[int, int], cell: int = REVIEW_CELL) -> np.ndarray:
    """(gh * gw, 2) the review cells (row, col) of a ``grid`` of (gh, gw) cells, most unsure first:
    by their summed patch scores, highest first. A cell whose score is not a number comes first
    (nothing can be said of it); equal scores, and cells the prediction does not cover, keep
    reading order. Review mode visits the cells in this order."""
    gh, gw = int(grid[0]), int(grid[1])
    cells = np.stack(np.divmod(np.arange(gh * gw), max(gw, 1)), 1).astype(np.int64)
    scores = cell_sums(patch_scores(pred), cell)
    full = np.zeros((gh, gw))
    h, w = min(gh, scores.shape[0]), min(gw, scores.shape[1])
    full[:h, :w] = np.nan_to_num(scores[:h, :w], nan=np.inf)
    return cells[np.argsort(-full.reshape(-1), kind="stable")]
