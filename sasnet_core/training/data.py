"""Training data: which images and head points to use, and the paper's random crops.

``load_samples`` turns a path into a list of ``Sample`` (image file, head points, optional ROI):

1. a folder holding our annotation files (``*.sasnet.json``, beside the images or in a project's
   ``annotations/`` folder): reviewed images only unless ``all_annotated``;
2. otherwise any layout ``sasnet_core.datasets.open_dataset`` knows (ShanghaiTech, UCF, ...);
3. if that module is not available, a built-in reader for the ShanghaiTech layout
   (``images/`` + ``ground-truth/GT_*.mat``, optionally under ``train_data`` / ``test_data``).

``CropDataset`` gives, per image, ``crops_per_image`` random ``crop_size`` squares with a random
horizontal flip each: images normalised with the ImageNet statistics (3, c, c), targets the
density map x count_scale (1, c, c). ``collate_crops`` stacks a batch of images into
(images x crops, ...). Crops are drawn from a generator seeded by (seed, epoch, index), so a run
is reproducible whatever the number of loader processes, and a resumed run sees the same crops.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from sasnet_core.errors import DatasetLayoutError

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
MEAN_RGB8 = (MEAN * 255).round().astype(np.uint8)  # fill outside the ROI: zero after normalising
ANNOTATION_SUFFIX = ".sasnet.json"


@dataclass
class Sample:
    image: Path
    points: np.ndarray  # (N, 2) float64, x = column
    roi: object | None = None  # an Annotation with ROI polygons, or None
    extra: dict = field(default_factory=dict)

    @property
    def count(self) -> float:
        if self.roi is not None and getattr(self.roi, "rois", None):
            return float(self.roi.inside_roi(self.points).sum())
        return float(len(self.points))


# -------------------------------------------------------------------------------------------
# which samples
# -------------------------------------------------------------------------------------------
def find_annotation_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob(f"*{ANNOTATION_SUFFIX}") if p.is_file())


def samples_from_annotations(folder: Path, all_annotated: bool = False) -> list[Sample]:
    """Our annotation files under ``folder``; reviewed only unless ``all_annotated``."""
    from sasnet_core.annotation import load_annotation

    files = find_annotation_files(folder)
    anns = [load_annotation(f) for f in files]
    chosen = anns if all_annotated else [a for a in anns if a.reviewed]
    if not chosen:
        raise DatasetLayoutError(
            f"{len(anns)} annotated image(s) but none marked reviewed; review them in the "
            "annotation view or pass --all-annotated to use unreviewed annotations too", folder)
    out = []
    for a in chosen:
        img = Path(a.image_path)
        if not img.is_file():
            raise DatasetLayoutError(f"annotation names an image that does not exist: {img}", folder)
        out.append(Sample(img, np.asarray(a.points, np.float64).reshape(-1, 2),
                          roi=a if a.rois else None))
    return out


def _adapt_foreign(item) -> Sample:
    """A sample of ``sasnet_core.datasets`` (any object with an image path and points)."""
    image = None
    for name in ("image_path", "image", "path"):
        value = item.get(name) if isinstance(item, dict) else getattr(item, name, None)
        if isinstance(value, (str, os.PathLike)):
            image = Path(value)
            break
    points = item.get("points") if isinstance(item, dict) else getattr(item, "points", None)
    if image is None or points is None:
        raise TypeError(f"cannot read image path and points from {type(item).__name__}")
    return Sample(image, np.asarray(points, np.float64).reshape(-1, 2))


def _read_mat_points(path: Path) -> np.ndarray:
    import scipy.io as sio

    try:
        mat = sio.loadmat(str(path))
    except Exception as exc:  # noqa: BLE001 - a damaged file is the user's problem: say which
        raise DatasetLayoutError(f"cannot read ground-truth file ({exc})", path) from None
    if "image_info" in mat:  # ShanghaiTech: image_info{1}.location
        return np.asarray(mat["image_info"][0, 0][0, 0][0], np.float64).reshape(-1, 2)
    if "annPoints" in mat:  # UCF_CC_50
        return np.asarray(mat["annPoints"], np.float64).reshape(-1, 2)
    raise DatasetLayoutError("no 'image_info' or 'annPoints' in ground-truth file", path)


def _shanghaitech(folder: Path, split: str | None) -> list[Sample]:
    roots = [folder]
    if split:
        roots.insert(0, folder / f"{split}_data")
    for root in roots:
        images, gts = root / "images", root / "ground-truth"
        if images.is_dir() and gts.is_dir():
            out = []
            for img in sorted(images.iterdir()):
                gt = gts / f"GT_{img.stem}.mat"
                if img.suffix.lower() in (".jpg", ".jpeg", ".png") and gt.is_file():
                    out.append(Sample(img, _read_mat_points(gt)))
            if out:
                return out
    return []


def load_samples(path: str | os.PathLike, split: str | None = "train",
                 all_annotated: bool = False) -> list[Sample]:
    """Samples of a data set folder (see the module doc). Raises DatasetLayoutError."""
    folder = Path(path).expanduser()
    if not folder.exists():
        raise DatasetLayoutError("no such data folder", folder)
    if folder.is_dir() and find_annotation_files(folder):
        return samples_from_annotations(folder, all_annotated)
    if split == "train" and has_split(folder, "test") and not has_split(folder, "train"):
        # never fall back to a test split for training (ShanghaiTech samples are holdouts)
        raise DatasetLayoutError("holds a test split only (test_data/); training needs "
                                 "train_data/ or a folder of annotated images", folder)
    try:
        from sasnet_core.datasets import open_dataset  # the data engineer's layout detector
    except ImportError:
        open_dataset = None
    if open_dataset is not None:
        try:
            ds = open_dataset(folder, split=split)
        except DatasetLayoutError:
            if split is None:
                raise
            ds = open_dataset(folder, split=None)
        samples = [_adapt_foreign(s) for s in ds]
    else:
        samples = _shanghaitech(folder, split) if folder.is_dir() else []
    if not samples:
        raise DatasetLayoutError("no annotated images found (expected our *.sasnet.json files or a "
                                 "known data set layout such as ShanghaiTech's images/ + "
                                 "ground-truth/)", folder)
    return samples


def has_split(path: str | os.PathLike, split: str) -> bool:
    return (Path(path) / f"{split}_data").is_dir()


def split_holdout(samples: list[Sample], share: float, seed: int = 0
                  ) -> tuple[list[Sample], list[Sample]]:
    """(train, held out): a seeded shuffle, at least one image on each side when share > 0."""
    if share <= 0:
        return list(samples), []
    if len(samples) < 2:
        raise DatasetLayoutError(f"holding out {share:.0%} needs at least 2 images, found "
                                 f"{len(samples)}; use --holdout 0")
    order = list(range(len(samples)))
    random.Random(seed).shuffle(order)
    n_val = min(max(1, int(round(share * len(samples)))), len(samples) - 1)
    val = sorted(order[:n_val])
    train = sorted(order[n_val:])
    return [samples[i] for i in train], [samples[i] for i in val]


# -------------------------------------------------------------------------------------------
# image + density of one sample
# -------------------------------------------------------------------------------------------
def load_pair(sample: Sample, sigma: float = 4.0, adaptive: bool = False
              ) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 RGB image and (H, W) float32 density (people per pixel) of a sample.

    With an ROI, pixels outside it are set to the mean colour (zero after normalisation) and only
    the points inside it are counted, so the model is never taught that a region is empty when
    nobody annotated it.
    """
    from sasnet_core.density import density_map
    from sasnet_core.imageio import read_image

    image = read_image(sample.image)
    points = sample.points
    if sample.roi is not None and getattr(sample.roi, "rois", None):
        mask = sample.roi.roi_mask(image.shape[:2])
        image = image.copy()
        image[~mask] = MEAN_RGB8
        points = points[sample.roi.inside_roi(points)]
    dens = density_map(points, image.shape[:2], sigma=sigma, kernel_size=15, adaptive=adaptive)
    return image, dens.astype(np.float32)


def normalise(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (3, H, W) float32, ImageNet mean/std."""
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)
    return (x - torch.from_numpy(MEAN)[:, None, None]) / torch.from_numpy(STD)[:, None, None]


class CropDataset(Dataset):
    """Item i: (crops (n, 3, c, c) normalised, targets (n, 1, c, c) density x count_scale)."""

    def __init__(self, samples: list[Sample], crop_size: int = 128, crops_per_image: int = 4,
                 flip: bool = True, sigma: float = 4.0, adaptive: bool = False,
                 count_scale: float = 1000.0, seed: int = 0, cache: bool = False):
        self.samples = list(samples)
        self.crop_size, self.n = crop_size, crops_per_image
        self.flip, self.sigma, self.adaptive = flip, sigma, adaptive
        self.count_scale, self.seed, self.epoch = count_scale, seed, 0
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _pair(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        pair = load_pair(self.samples[i], self.sigma, self.adaptive)
        if self._cache is not None:
            self._cache[i] = pair
        return pair

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, dens = self._pair(i)
        c = self.crop_size
        h, w = dens.shape
        if h < c or w < c:  # pad small images: mean colour, no people
            ph, pw = max(c - h, 0), max(c - w, 0)
            image = np.concatenate([image, np.broadcast_to(MEAN_RGB8, (ph, image.shape[1], 3))], 0) if ph else image
            image = np.concatenate([image, np.broadcast_to(MEAN_RGB8, (image.shape[0], pw, 3))], 1) if pw else image
            dens = np.pad(dens, ((0, ph), (0, pw)))
            h, w = dens.shape
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) * 1_000_003 + i)
        tops = torch.randint(0, h - c + 1, (self.n,), generator=g).tolist()
        lefts = torch.randint(0, w - c + 1, (self.n,), generator=g).tolist()
        flips = (torch.rand(self.n, generator=g) < 0.5).tolist()
        imgs, dens_out = [], []
        for t, l, f in zip(tops, lefts, flips):
            im = image[t:t + c, l:l + c]
            d = dens[t:t + c, l:l + c]
            if self.flip and f:
                im, d = im[:, ::-1], d[:, ::-1]
            imgs.append(normalise(im))
            dens_out.append(torch.from_numpy(np.ascontiguousarray(d))[None] * self.count_scale)
        return torch.stack(imgs), torch.stack(dens_out)


def collate_crops(batch) -> tuple[torch.Tensor, torch.Tensor]:
    """[(n,3,c,c), (n,1,c,c)] x B -> (B*n, 3, c, c), (B*n, 1, c, c)."""
    images, targets = zip(*batch)
    return torch.cat(images), torch.cat(targets)


class FullImageDataset(Dataset):
    """Item i: (image (3, H, W) normalised, true count) for validation on whole images."""

    def __init__(self, samples: list[Sample]):
        self.samples = list(samples)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, float]:
        from sasnet_core.imageio import read_image

        s = self.samples[i]
        image = read_image(s.image)
        if s.roi is not None and getattr(s.roi, "rois", None):
            image = image.copy()
            image[~s.roi.roi_mask(image.shape[:2])] = MEAN_RGB8
        return normalise(image), s.count


class TensorCropDataset(Dataset):
    """Crops already in memory (tests, synthetic data): item i -> (images[i:i+1], targets[i:i+1])
    for a (N, 3, c, c) / (N, 1, c, c) pair, so it feeds ``collate_crops`` like CropDataset."""

    def __init__(self, images: torch.Tensor, targets: torch.Tensor):
        self.images, self.targets = images, targets

    def __len__(self) -> int:
        return len(self.images)

    def set_epoch(self, epoch: int) -> None:
        pass

    def __getitem__(self, i: int):
        return self.images[i:i + 1], self.targets[i:i + 1]
