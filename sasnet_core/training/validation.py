"""Validation during training: the model being trained counts the validation images the way
``sasnet eval`` counts them (``sasnet_core.evaluation.evaluate``, through ``count_stream`` with a
``Predictor``), so a run's validation MAE is the MAE ``sasnet eval`` reports for its checkpoint.

Under DDP each process counts every world_size-th image and the rows are gathered, so all
processes return the same figures.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from sasnet_core.engine.inference import Predictor
from sasnet_core.evaluation.evaluate import EvalReport
from sasnet_core.evaluation.evaluate import evaluate as evaluate_samples
from sasnet_core.training import distributed as D
from sasnet_core.training.steps import Precision, precision_for, unwrap
from sasnet_core.util.errors import ImageReadError


def predictor_for(model: nn.Module, device: torch.device, precision: Precision):
    """A ``Predictor`` on a copy of the model as it is now (BatchNorm folded), counting on the
    training device at the training precision; always torch, never a conversion to OpenVINO."""
    return Predictor(unwrap(model), device=device, precision="bf16" if precision.autocast else "fp32",
                     channels_last=precision.channels_last, keep_levels=False, copy_model=True,
                     backend="torch")


def _gather_rows(rows: list[dict], info: D.DistInfo) -> list[dict]:
    if not info.enabled:
        return rows
    import torch.distributed as dist

    parts: list = [None] * info.world_size
    dist.all_gather_object(parts, rows)
    return [row for part in parts for row in part]


@torch.no_grad()
def evaluate(model: nn.Module, dataset, device: torch.device | str = "cpu", *,
             precision: Precision | None = None, dist_info: D.DistInfo | None = None
             ) -> dict[str, float]:
    """Whole-image counts of ``dataset`` (samples, or a ``FullImageDataset`` of them):
    {"mae", "mse", "n"}. ``mse`` is the root of the mean squared error, as crowd-counting papers
    (and the SASNet paper) report it. The ROI and the reviewed cells of a partly reviewed image
    restrict both counts. An image that cannot be counted stops the run, naming it."""
    device = torch.device(device)
    info = dist_info or D.DistInfo(device=device)
    samples = list(getattr(dataset, "samples", dataset))[info.rank::info.world_size]
    predictor = predictor_for(model, device, precision or precision_for(device, "fp32"))
    report = evaluate_samples(predictor, samples, roi=True)
    for image, why in report.skipped:
        if image not in report.not_a_number:  # the image is at fault: say which
            raise ImageReadError(f"cannot validate on it: {why}", image)
    # A model whose output is NaN or infinite (a diverged step, damaged weights) is measured as
    # such: a NaN figure in the log and no new best model, and the run goes on, as the person
    # may stop it; the image it was counted on is not to blame.
    diverged = bool(_gather_rows([{"nan": True}] if report.not_a_number else [], info))
    report = EvalReport(rows=_gather_rows(report.rows, info))
    if diverged:
        return {"mae": math.nan, "mse": math.nan, "n": report.n_images}
    if report.n_images == 0:
        return {"mae": math.nan, "mse": math.nan, "n": 0}
    return {"mae": report.mae, "mse": report.mse, "n": report.n_images}
