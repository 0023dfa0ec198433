"""Which images and head points a run trains and validates on.

Built on the data set readers (``sasnet_core.datasets``): samples are their ``Sample``
(image path, points, split, ROI polygons, resize) and the crops come from their ``TrainCrops``
(the paper's 4 random 128 x 128 crops with flips, targets x 1000). What this module adds:

- ``load_samples``: a folder of our annotation files (reviewed images only unless
  ``all_annotated``, with a clear error when none is reviewed; a partly reviewed image is used
  in its reviewed cells alone), or any layout ``open_dataset`` detects; a training split never
  falls back to a test split (ShanghaiTech samples are holdouts);
- ``training_samples`` / ``validation_sets``: the same for several data sets in one run (the
  union of their training images; the test split of each that has one);
- ``split_holdout``: a seeded share of images kept out for validation;
- ``FullImageDataset``: whole images and true counts for validation;
- ``TensorCropDataset``: crops already in memory (tests, synthetic data).
"""
from __future__ import annotations

import logging
import os
import random
from pathlib import Path

import torch
from torch.utils.data import Dataset

from sasnet_core.annotations.store import annotated_images, has_annotations
from sasnet_core.datasets import detect_layout, open_dataset
from sasnet_core.datasets.detect import layout_options
from sasnet_core.datasets.layouts import Sample
from sasnet_core.io.imageio import image_size
from sasnet_core.model.config import SASNetConfig
from sasnet_core.model.preprocess import normalise
from sasnet_core.training.crops import TrainCrops
from sasnet_core.training.crops import collate_crops as collate
from sasnet_core.util.errors import DatasetLayoutError
from sasnet_core.util.logs import warn_once

__all__ = ["Sample", "load_samples", "training_samples", "validation_samples", "validation_sets",
           "folds_for", "split_holdout", "FullImageDataset",
           "TensorCropDataset", "crop_dataset", "collate_crops"]


def _is_annotated_folder(folder: Path) -> bool:
    """A folder of our annotation files and no public data set: a data set whose images a person
    corrected in the app has annotation files too, and trains on the whole set, each image with
    its corrections (``ground_truth.apply_corrections``), not on the corrected images alone."""
    if not folder.is_dir() or not has_annotations(folder):
        return False
    try:
        return detect_layout(folder) == "annotated_folder"
    except DatasetLayoutError:
        return True


def samples_from_annotations(folder: Path, all_annotated: bool = False) -> list[Sample]:
    """The annotated images under ``folder`` as the annotation store lists them: beside the
    images, in a project, or in annotation files whose images live elsewhere (a staging folder)."""
    pairs = annotated_images([folder])  # a damaged file, or one naming a missing image, is named
    chosen = [(image, a) for image, a in pairs if all_annotated or a.teaches]
    if not chosen:
        raise DatasetLayoutError(
            f"{len(pairs)} annotated image(s) but none marked reviewed or with reviewed cells; "
            "review them in the annotation view or pass --all-annotated to use unreviewed "
            "annotations too", folder)
    out = []
    for image, a in chosen:
        split = a.extra.get("split") if isinstance(a.extra.get("split"), str) else "all"
        # A partly reviewed image teaches only its reviewed cells (elsewhere its points may be
        # missing or unchecked); --all-annotated takes every annotation as it is, whole.
        cells = frozenset() if a.reviewed or all_annotated else _cells_on_image(image, a)
        out.append(Sample(str(image), a.points, split, list(a.rois), None, a.reviewed, cells,
                          a.review_cell_px))
    return out


def _cells_on_image(image: Path, ann) -> frozenset:
    """The reviewed cells of a partly reviewed image that cover some of it; none at all would
    leave nothing to learn from, which a damaged or mismatched file must not do silently."""
    w, h = ann.image_size or image_size(image)
    c = ann.review_cell_px
    cells = frozenset((r, k) for r, k in ann.reviewed_cells if r * c < h and k * c < w)
    if not cells:
        raise DatasetLayoutError(f"its reviewed cells all lie outside the {w} x {h} image; review "
                                 "it again in review mode", image)
    return cells


def _open(folder: Path, fold: int | None = None):
    return open_dataset(folder, split=None, fold=fold)  # --fold elsewhere than UCF_CC_50 is refused


def load_samples(path: str | os.PathLike, split: str | None = "train",
                 all_annotated: bool = False, fold: int | None = None) -> list[Sample]:
    """Samples to train on (``split="train"``), to validate on (``"test"``) or all (None).

    A data set with named splits gives that split; one without (UCF_CC_50 without a fold, a
    folder of images) gives everything for "train". "train" never falls back to a test split.
    """
    folder = Path(path).expanduser()
    if not folder.exists():
        raise DatasetLayoutError("no such data folder", folder)
    if _is_annotated_folder(folder):
        samples = samples_from_annotations(folder, all_annotated)
        if split and any(s.split == split for s in samples):
            samples = [s for s in samples if s.split == split]
        return samples
    ds = _open(folder, fold)
    # What the data set's reader noticed (corrections used, or set aside because they do not fit
    # their image) is said once, as `sasnet eval` says it: a run must not learn from it unseen.
    for line in ds.report:
        warn_once(logging.getLogger(__name__), line)
    splits = set(ds.splits)
    if split is None or split == "all":
        return list(ds)
    if split in splits:
        return list(ds.select(split))
    if split == "train" and splits <= {"all"}:
        return list(ds)
    if split == "train" and any(name.startswith("fold") for name in splits):
        raise DatasetLayoutError("data set in folds: choose the test fold with --fold K (the other "
                                 "folds train), as in the five-fold protocol", folder)
    raise DatasetLayoutError(f"has no {split!r} split (has: {', '.join(sorted(splits))}); "
                             + ("training never uses a test split" if split == "train" else
                                "pass --val or --holdout"), folder)


def validation_samples(path: str | os.PathLike, fold: int | None = None) -> list[Sample] | None:
    """The test split of a data set that also has a train split, else None."""
    folder = Path(path).expanduser()
    if _is_annotated_folder(folder):
        return None
    try:
        ds = _open(folder, fold)
    except DatasetLayoutError:
        return None
    if {"train", "test"} <= set(ds.splits):
        return list(ds.select("test"))
    return None


def _in_folds(folder: Path) -> bool:
    """Whether ``folder`` is a data set laid out in folds (UCF_CC_50), which ``--fold`` splits."""
    if _is_annotated_folder(folder):
        return False
    try:
        return "fold" in layout_options(detect_layout(folder))
    except DatasetLayoutError:
        return False  # loading it names the folder and what is wrong


def folds_for(paths: list, fold: int | None) -> list[int | None]:
    """``fold`` for each of several data sets: those laid out in folds take it, the others none.
    When none is in folds, each is given it, so a data set that has no use for it refuses it by name
    (as one data set alone always did)."""
    if fold is None:
        return [None] * len(paths)
    takes = [_in_folds(Path(p).expanduser()) for p in paths]
    return [fold if t or not any(takes) else None for t in takes]


def training_samples(paths: list, all_annotated: bool = False, fold: int | None = None) -> list[Sample]:
    """The union of the training images of the data sets ``paths``, each read by ``load_samples``
    in the order given (``--fold`` as ``folds_for`` applies it)."""
    out: list[Sample] = []
    for path, k in zip(paths, folds_for(paths, fold)):
        out += load_samples(path, split="train", all_annotated=all_annotated, fold=k)
    return out


def validation_sets(paths: list, fold: int | None = None) -> list[tuple[str, list[Sample]]]:
    """(data set, its validation images) for each of ``paths`` that has a test split besides its
    training one (UCF_CC_50 with --fold: the held-out fold), in the order given."""
    out = []
    for path, k in zip(paths, folds_for(paths, fold)):
        val = validation_samples(path, fold=k)
        if val:
            out.append((str(path), val))
    return out


def holdout_count(n_images: int, share: float) -> int:
    """How many of ``n_images`` are held out for ``share``: at least one on each side (none for
    fewer than two images). The fine-tune budget's minimum counts the same ones."""
    if share <= 0 or n_images < 2:
        return 0
    return min(max(1, int(round(share * n_images))), n_images - 1)


def split_holdout(samples: list[Sample], share: float, seed: int = 0
                  ) -> tuple[list[Sample], list[Sample]]:
    """(train, held out): a seeded shuffle, at least one image on each side when share > 0."""
    if share <= 0:
        return list(samples), []
    if len(samples) < 2:
        raise DatasetLayoutError(f"holding out {share:.0%} of the images needs at least 2, found "
                                 f"{len(samples)}; use --holdout 0")
    order = list(range(len(samples)))
    random.Random(seed).shuffle(order)
    n_val = holdout_count(len(samples), share)
    return ([samples[i] for i in sorted(order[n_val:])], [samples[i] for i in sorted(order[:n_val])])


def crop_dataset(samples: list[Sample], crop_size: int = 128, crops_per_image: int = 4,
                 flip: bool = True, sigma: float = 4.0, adaptive: bool = False,
                 count_scale: float = SASNetConfig.count_scale) -> Dataset:
    return TrainCrops(samples, crop=crop_size, crops_per_image=crops_per_image, flip=flip,
                      sigma=sigma, adaptive=adaptive, count_scale=count_scale)


def collate_crops(batch):
    return collate(batch)


class FullImageDataset(Dataset):
    """Item i: (image (3, H, W) normalised, true count, mask (H, W) bool or None) for
    validation on whole images. As in ``sasnet eval``, the ROI restricts both counts: the true
    count holds the heads inside it and the predicted density is summed inside it; so do the
    reviewed cells of a partly reviewed image."""

    def __init__(self, samples: list[Sample]):
        self.samples = list(samples)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, float, torch.Tensor | None]:
        s = self.samples[i]
        image = s.load_image()
        mask = s.annotation().roi_mask(image.shape[:2]) if s.rois else None
        known = s.known_mask(image.shape[:2])  # a partly reviewed image: its reviewed cells
        if known is not None:
            mask = known if mask is None else mask & known
        return normalise(image).contiguous(), float(s.count), \
            None if mask is None else torch.from_numpy(mask)


class TensorCropDataset(Dataset):
    """Crops already in memory: item i -> (images[i:i+1], targets[i:i+1]) of a (N, 3, c, c) /
    (N, 1, c, c) pair, so it feeds ``collate_crops`` like TrainCrops."""

    def __init__(self, images: torch.Tensor, targets: torch.Tensor):
        self.images, self.targets = images, targets

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.images[i:i + 1], self.targets[i:i + 1]
