"""Counting metrics, pure numpy.

MAE and "MSE" as crowd-counting papers report them (the MSE is the root of the mean squared
error), NAE (mean of |error| / ground truth over images with people), and GAME(L) (Guerrero-
Gomez-Olmedo et al., 2015): the image cut into 4^L equal cells, absolute errors summed over cells.
"""
from __future__ import annotations

import numpy as np


def mae(gt, pred) -> float:
    gt, pred = np.asarray(gt, np.float64), np.asarray(pred, np.float64)
    return float(np.mean(np.abs(pred - gt))) if gt.size else float("nan")


def mse(gt, pred) -> float:
    """Root-mean-square error: what crowd-counting papers call MSE."""
    gt, pred = np.asarray(gt, np.float64), np.asarray(pred, np.float64)
    return float(np.sqrt(np.mean((pred - gt) ** 2))) if gt.size else float("nan")


def nae(gt, pred) -> float:
    """Mean |error| / gt over images with gt > 0 (NWPU's definition skips empty images)."""
    gt, pred = np.asarray(gt, np.float64), np.asarray(pred, np.float64)
    keep = gt > 0
    return float(np.mean(np.abs(pred[keep] - gt[keep]) / gt[keep])) if keep.any() else float("nan")


def grid_edges(n_pixels: int, level: int) -> np.ndarray:
    """2^level + 1 integer cell edges along one axis (cells differ by at most one pixel)."""
    cells = 2**level
    return (np.arange(cells + 1) * n_pixels) // cells


def cell_counts_from_density(density: np.ndarray, level: int) -> np.ndarray:
    """(2^L, 2^L) sums of a density map over the GAME grid."""
    h, w = density.shape
    ry, rx = grid_edges(h, level), grid_edges(w, level)
    rows = np.add.reduceat(density.astype(np.float64), ry[:-1], axis=0) if h else np.zeros((0, w))
    # reduceat needs strictly increasing starts; tiny images give empty cells -> zero them.
    cells = np.add.reduceat(rows, rx[:-1], axis=1)
    cells[np.diff(ry) == 0, :] = 0
    cells[:, np.diff(rx) == 0] = 0
    return cells


def cell_counts_from_points(points: np.ndarray, shape, level: int) -> np.ndarray:
    """(2^L, 2^L) head counts over the GAME grid; a head belongs to the pixel floor(x), floor(y),
    clipped onto the image (published points slightly off the image still count)."""
    h, w = int(shape[0]), int(shape[1])
    n = 2**level
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    col = np.clip(np.floor(pts[:, 0]), 0, max(w - 1, 0)).astype(np.int64)
    row = np.clip(np.floor(pts[:, 1]), 0, max(h - 1, 0)).astype(np.int64)
    cx = np.searchsorted(grid_edges(w, level), col, side="right") - 1
    cy = np.searchsorted(grid_edges(h, level), row, side="right") - 1
    return np.bincount(cy * n + cx, minlength=n * n).reshape(n, n).astype(np.float64)


def game(pred_density: np.ndarray, gt_points: np.ndarray, level: int) -> float:
    """Sum over the 4^L cells of |predicted - true count| for one image."""
    pc = cell_counts_from_density(pred_density, level)
    gc = cell_counts_from_points(gt_points, pred_density.shape, level)
    return float(np.abs(pc - gc).sum())
