"""Evaluate a predictor on a data set: per-image rows and MAE, MSE (RMSE), NAE, GAME(0..3).

Where a sample has ROI polygons, both counts are restricted to it: heads inside the polygons,
and the predicted density masked to the pixels whose centres are inside. An image that cannot be
read (or gives no finite count) is left out of the figures and listed in ``EvalReport.skipped``,
so one damaged file neither stops an evaluation nor silently changes its result.
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sasnet_core.engine.counting import NOT_A_NUMBER, count_stream
from sasnet_core.evaluation import metrics
from sasnet_core.io.atomic import atomic_path
from sasnet_core.util.errors import SASNetError

GAME_LEVELS = (0, 1, 2, 3)


@dataclass
class EvalReport:
    rows: list[dict] = field(default_factory=list)  # image, gt_count, pred_count, abs_error, game0..3
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (image, why it was left out)
    # Of those, the images where the model's output was NaN or infinite (the model is at fault).
    not_a_number: list[str] = field(default_factory=list)

    @property
    def n_images(self) -> int:
        return len(self.rows)

    def _col(self, key) -> np.ndarray:
        return np.array([r[key] for r in self.rows], np.float64)

    @property
    def mae(self) -> float:
        return metrics.mae(self._col("gt_count"), self._col("pred_count"))

    @property
    def mse(self) -> float:
        return metrics.mse(self._col("gt_count"), self._col("pred_count"))

    @property
    def nae(self) -> float:
        return metrics.nae(self._col("gt_count"), self._col("pred_count"))

    @property
    def game(self) -> dict[int, float]:
        return {L: float(np.mean(self._col(f"game{L}"))) if self.rows else math.nan
                for L in GAME_LEVELS}

    def summary(self) -> dict:
        return {"images": self.n_images, "mae": self.mae, "mse": self.mse, "nae": self.nae,
                **{f"game{L}": v for L, v in self.game.items()}}

    def to_json(self) -> str:
        """Standard JSON: an undefined figure (NAE with no person in any image, anything on no
        image) is null, not Python's non-standard NaN that other JSON readers reject."""
        def clean(d: dict) -> dict:
            return {k: None if isinstance(v, float) and not math.isfinite(v) else v
                    for k, v in d.items()}

        skipped = [{"image": image, "error": error, "skipped": True} for image, error in self.skipped]
        return json.dumps({"summary": clean(self.summary()), "images": [clean(r) for r in self.rows],
                           "skipped": skipped}, indent=1, allow_nan=False)

    def write_csv(self, path) -> None:
        keys = ["image", "split", "gt_count", "pred_count", "abs_error"] + [f"game{L}" for L in GAME_LEVELS]
        with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, keys, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(self.rows)

    def format_table(self) -> str:
        s = self.summary()
        lines = [f"images  {s['images']}", f"MAE     {s['mae']:.2f}", f"MSE     {s['mse']:.2f}  (root mean square)",
                 f"NAE     {s['nae']:.4f}"]
        lines += [f"GAME({L}) {s[f'game{L}']:.2f}" for L in GAME_LEVELS]
        return "\n".join(lines)


def _fit_density(density: np.ndarray, shape) -> np.ndarray:
    """The density on the image's pixel grid, mass preserved (predictors should already match)."""
    if density.shape == tuple(shape[:2]):
        return density
    import cv2

    total = float(density.sum())
    out = cv2.resize(density.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    s = float(out.sum())
    return out * (total / s) if s > 0 else out


def evaluate_sample(prediction_density: np.ndarray, sample, shape, roi: bool = True) -> dict:
    """One image's row. The ROI (unless ``roi`` is False) and the reviewed cells of a partly
    reviewed image restrict both counts: the true heads inside them, and the predicted density
    summed over their pixels."""
    ann = sample.annotation()
    density = _fit_density(np.asarray(prediction_density, np.float64), shape)
    points = sample.points
    keep = np.ones(len(points), bool)
    if roi and ann.rois:
        keep &= ann.inside_roi()
        density = density * ann.roi_mask(shape[:2])
    known = sample.known_mask(shape[:2]) if hasattr(sample, "known_mask") else None
    if known is not None:
        keep &= ann.in_reviewed_cells()
        density = density * known
    points = points[keep]
    gt, pred = float(len(points)), float(density.sum())
    row = {"image": str(sample.image_path), "split": getattr(sample, "split", ""),
           "gt_count": gt, "pred_count": pred, "abs_error": abs(pred - gt)}
    for L in GAME_LEVELS:
        row[f"game{L}"] = metrics.game(density, points, L)
    return row


def _inputs(samples: list):
    """What ``count_stream`` reads for each sample: its file, or, for a sample whose points are
    in resized pixels, the image resized as they are. Pulled by the stream's read-ahead thread,
    so the resizing is done there too. A file that cannot be read is handed over by name: the
    stream reads it and reports it as skipped, naming the problem."""
    for sample in samples:
        if getattr(sample, "resize", None) is None:
            yield str(sample.image_path)
            continue
        try:
            yield sample.load_image()
        except (SASNetError, OSError):
            yield str(sample.image_path)


def _shape(result) -> tuple[int, int]:
    """(height, width) of the image a result counted (the full-size density map's otherwise)."""
    size = getattr(result, "image_size", None)
    return (int(size[1]), int(size[0])) if size is not None else result.density.shape[:2]


def _tick(progress, done: int, total: int) -> None:
    if hasattr(progress, "update"):
        progress.update()
    elif progress is not None:
        progress(done, total)


def evaluate(predictor, dataset, roi: bool = True, progress=None, *, batch_size: int = 1,
             cancel=None) -> EvalReport:
    """Count every sample through ``count_stream`` (batched, read ahead, stopped by ``cancel``)
    and compare with its ground truth. ``progress``: an object with ``update()`` (e.g.
    ``sasnet_core.util.progress.Progress``) or a callable ``f(done, total)``."""
    samples = list(dataset)
    report = EvalReport()
    results = count_stream(predictor, _inputs(samples), batch_size=batch_size, cancel=cancel,
                           display_side=None, maps=True, heads=False)
    # One result per input, in input order: the i-th result is the i-th sample's.
    for i, (sample, result) in enumerate(zip(samples, results)):
        if result.skipped:
            report.skipped.append((str(sample.image_path), result.error or "it cannot be counted"))
            if result.error == NOT_A_NUMBER:
                report.not_a_number.append(str(sample.image_path))
        else:
            report.rows.append(evaluate_sample(result.density, sample, _shape(result), roi))
        _tick(progress, i + 1, len(samples))
    return report


def load_csv(path) -> list[dict]:
    with open(Path(path), newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
