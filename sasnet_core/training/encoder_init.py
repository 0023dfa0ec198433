"""The training images an encoder initialisation measures its statistics on.

CSRNet's front end enters SASNet with a BatchNorm after every conv (``model.csrnet_encoder``);
those are set to the identity on real crowd images, and the right ones are the run's own: a few
of its training images, spread over the set, each downscaled so its longer side is at most
``CALIBRATION_MAX_SIDE`` (the statistics of a conv output barely change with scale, the time does).
"""
from __future__ import annotations

import torch

from sasnet_core.model.csrnet_encoder import is_csrnet_source
from sasnet_core.model.preprocess import normalise
from sasnet_core.training.config import TrainConfig
from sasnet_core.training.data import training_samples

CALIBRATION_IMAGES = 4
CALIBRATION_MAX_SIDE = 512


def encoder_calibration_images(cfg: TrainConfig) -> list[torch.Tensor] | None:
    """(1, 3, H, W) ImageNet-normalised training images for ``sasnet(calibration_images=...)``
    when ``cfg`` starts from CSRNet's encoder; None for any other start (nothing is read)."""
    if cfg.init or not cfg.data or not is_csrnet_source(cfg.encoder_weights):
        return None
    import cv2

    samples = training_samples(cfg.data_sets, all_annotated=cfg.all_annotated, fold=cfg.fold)
    n = min(CALIBRATION_IMAGES, len(samples))
    # Evenly spread and in a fixed order, so every process of a distributed run (and a rerun)
    # measures the same images.
    chosen = [samples[i * len(samples) // n] for i in range(n)]
    out = []
    for sample in chosen:
        image = sample.load_image()
        h, w = image.shape[:2]
        s = CALIBRATION_MAX_SIDE / max(h, w)
        if s < 1:
            image = cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
        out.append(normalise(image).unsqueeze(0).contiguous())
    return out
