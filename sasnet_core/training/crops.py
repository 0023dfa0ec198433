"""Training crops as the paper and the released code take them.

Per image: ``crops_per_image`` (4) random ``crop`` x ``crop`` (128) windows, each flipped
horizontally with probability 1/2, the density target cut with the image. Images are made into
model input by the model's own preprocessing (``sasnet_core.model.preprocess``, as counting
does); targets are densities x ``count_scale`` (``SASNetConfig.count_scale``, 1000 as the
released code). An image smaller than the crop is padded (image with the mean colour, i.e. 0
after normalising; density with 0), so a tiny image never crashes a run. Density
targets are computed once per image and kept in memory (float32).

A partly reviewed image (``Sample.reviewed_cells``) has the target ``losses.UNKNOWN`` outside
its reviewed cells, and its crops are taken over those cells.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset

from sasnet_core.annotations.density import density_map
from sasnet_core.model.config import SASNetConfig
from sasnet_core.model.preprocess import MEAN_RGB8, normalise, pad_to
from sasnet_core.training.losses import UNKNOWN


class TrainCrops(TorchDataset):
    """Item i: (images (K, 3, c, c) float32, targets (K, 1, c, c) float32) of sample i."""

    def __init__(self, samples, crop: int = 128, crops_per_image: int = 4, flip: bool = True,
                 sigma: float = 4.0, kernel_size: int = 15, adaptive: bool = False,
                 count_scale: float = SASNetConfig.count_scale, use_roi: bool = True):
        self.samples = list(samples)
        self.crop, self.k, self.flip = int(crop), int(crops_per_image), flip
        self.density_args = dict(sigma=sigma, kernel_size=kernel_size, adaptive=adaptive)
        self.count_scale, self.use_roi = count_scale, use_roi
        self._targets: dict[int, np.ndarray] = {}  # per-process cache (each loader worker has one)

    def __len__(self) -> int:
        return len(self.samples)

    def target(self, i: int, shape) -> np.ndarray:
        if i not in self._targets:
            s = self.samples[i]
            ann = s.annotation()
            pts = s.points[ann.inside_roi()] if self.use_roi else s.points
            dens = density_map(pts, shape[:2], **self.density_args)
            if self.use_roi and s.rois:
                dens *= ann.roi_mask(shape[:2])  # no target mass outside the region
            dens = (dens * self.count_scale).astype(np.float32)
            known = s.known_mask(shape[:2])
            if known is not None:  # a partly reviewed image: the rest is unknown, not empty
                dens[~known] = UNKNOWN
            self._targets[i] = dens
        return self._targets[i]

    def _origins(self, i: int, h: int, w: int) -> tuple[list[int], list[int]]:
        """Top-left corners of the K crops. In a partly reviewed image each crop holds a random
        point of a random reviewed cell, so no crop is spent where nothing is known."""
        c, s = self.crop, self.samples[i]
        if not s.reviewed_cells:
            return (torch.randint(0, h - c + 1, (self.k,)).tolist(),
                    torch.randint(0, w - c + 1, (self.k,)).tolist())
        cells = torch.tensor(sorted(s.reviewed_cells), dtype=torch.float64)  # (n, 2) row, col
        pick = cells[torch.randint(0, len(cells), (self.k,))]
        point = (pick + torch.rand(self.k, 2)) * s.review_cell_px  # (K, 2) y, x inside the cell
        corner = point.long() - torch.randint(0, c, (self.k, 2))
        ys = corner[:, 0].clamp(0, h - c).tolist()
        xs = corner[:, 1].clamp(0, w - c).tolist()
        return ys, xs

    def __getitem__(self, i: int):
        image = self.samples[i].load_image()
        dens = self.target(i, image.shape)
        if self.use_roi and self.samples[i].rois:
            mask = self.samples[i].annotation().roi_mask(image.shape[:2])
            image = np.where(mask[..., None], image, MEAN_RGB8)
        c = self.crop
        x = pad_to(normalise(image), c, c).numpy()  # (3, H, W), at least c x c
        _, h, w = x.shape
        if dens.shape != (h, w):  # the image was padded: pad the target with it, with 0
            dens = np.pad(dens, ((0, h - dens.shape[0]), (0, w - dens.shape[1])))
        imgs = np.empty((self.k, 3, c, c), np.float32)
        tgts = np.empty((self.k, 1, c, c), np.float32)
        # torch's RNG: seeded per loader worker by torch, and by torch.manual_seed in a run.
        ys, xs = self._origins(i, h, w)
        flips = (torch.rand(self.k) < 0.5).tolist() if self.flip else [False] * self.k
        for j, (y0, x0, f) in enumerate(zip(ys, xs, flips)):
            im, dm = x[:, y0 : y0 + c, x0 : x0 + c], dens[y0 : y0 + c, x0 : x0 + c]
            if f:
                im, dm = im[:, :, ::-1], dm[:, ::-1]
            imgs[j], tgts[j, 0] = im, dm
        return torch.from_numpy(imgs), torch.from_numpy(tgts)


def collate_crops(batch):
    """List of (K, 3, c, c), (K, 1, c, c) pairs -> (B*K, 3, c, c), (B*K, 1, c, c)."""
    images, targets = zip(*batch)
    return torch.cat(images, 0), torch.cat(targets, 0)
