"""Readers for public crowd-counting data set layouts and for a folder of our annotation files.

Every reader turns a root folder into ``Sample``s: image path, head points (N, 2) float64 x, y
in the pixels of the image *as loaded* (after any ``max_side`` downscale), ROI polygons and a
split name. Ground truth comes through ``sasnet_core.annotations.formats`` so a malformed file gets the same
error, naming file and field, as on import; points off the image are kept (published counts stay
exact) and collected in ``Dataset.report``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sasnet_core.annotations.annotation import DEFAULT_REVIEW_CELL_PX, Annotation
from sasnet_core.annotations.formats import read_points
from sasnet_core.annotations.store import Project, annotated_images, has_annotations
from sasnet_core.io.imageio import image_size, read_image
from sasnet_core.io.inputs import collect_inputs, natural_key
from sasnet_core.util.errors import DatasetLayoutError


@dataclass
class Sample:
    image_path: str
    points: np.ndarray  # (N, 2) float64 x, y in the loaded image's pixels
    split: str
    rois: list[np.ndarray] = field(default_factory=list)
    resize: tuple[int, int] | None = None  # (w, h) the image is resized to when loaded
    reviewed: bool = True
    # A partly reviewed image: only these review cells {(row, col)} are known to be right, so
    # training learns from them alone and its true count is the heads inside them. Empty: the
    # whole image is known.
    reviewed_cells: frozenset = frozenset()
    review_cell_px: int = DEFAULT_REVIEW_CELL_PX

    @property
    def count(self) -> int:
        """Heads inside the ROI (all heads without one) and inside the reviewed cells of a partly
        reviewed image: the ground-truth count."""
        ann = self.annotation()
        if not self.reviewed_cells:
            return ann.count_in_roi()
        return int((ann.inside_roi() & ann.in_reviewed_cells()).sum())

    def annotation(self) -> Annotation:
        return Annotation(self.image_path, self.resize, self.points, rois=self.rois,
                          reviewed=self.reviewed, reviewed_cells=self.reviewed_cells,
                          review_cell_px=self.review_cell_px)

    def known_mask(self, shape) -> np.ndarray | None:
        """(H, W) bool of the pixels a partly reviewed image's reviewed cells cover; None when
        the whole image is known."""
        return self.annotation().reviewed_cells_mask(shape) if self.reviewed_cells else None

    def load_image(self) -> np.ndarray:
        """(H, W, 3) uint8 RGB, resized as the points are (``resize``)."""
        image = read_image(self.image_path)
        if self.resize is not None and (image.shape[1], image.shape[0]) != tuple(self.resize):
            import cv2

            image = cv2.resize(image, tuple(self.resize), interpolation=cv2.INTER_AREA)
        return image


# Why a split asked for is not there, where the layout's splits depend on an option.
SPLIT_HINTS = {"ucf_cc_50": "; UCF_CC_50 is split by folds: without --fold its splits are "
                            "fold1..fold5, with --fold K fold K is 'test' and the other four 'train'"}


class Dataset:
    """The samples of one layout, all splits; iterate it for the selected split's samples."""

    def __init__(self, layout: str, root: Path, samples: list[Sample], report=None):
        self.layout, self.root, self.all_samples = layout, Path(root), samples
        self.report: list[str] = list(report or [])
        self.samples = samples

    @property
    def splits(self) -> list[str]:
        return sorted({s.split for s in self.all_samples})

    def select(self, split: str | None) -> "Dataset":
        """Only ``split`` (None or "all": every sample). Unknown split: DatasetLayoutError."""
        if split in (None, "all"):
            chosen = list(self.all_samples)
        else:
            chosen = [s for s in self.all_samples if s.split == split]
            if not chosen:
                raise DatasetLayoutError(
                    f"{self.layout} data set has no split {split!r} (has: "
                    f"{', '.join(self.splits) or 'none'})" + SPLIT_HINTS.get(self.layout, ""), self.root)
        ds = Dataset(self.layout, self.root, self.all_samples, self.report)
        ds.samples = chosen
        return ds

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self):
        return iter(self.samples)

    def __getitem__(self, i) -> Sample:
        return self.samples[i]


def _images(folder: Path) -> list[Path]:
    """The images of one folder, listed as everywhere else (natural order, hidden files skipped)."""
    if not folder.is_dir():
        return []
    return collect_inputs([folder], recursive=False).images


def _natural(p: Path):
    return natural_key(p.name)


def _gt(path: Path, fmt: str, report: list) -> np.ndarray:
    return read_points(path, fmt, report=report).points


# -- where each layout keeps the ground truth of one image ------------------------------------------
# The readers below and ``ground_truth.locate`` (one image opened in the app, ranked, or counted)
# both name an image's file with these rules, so a folder and a single image never disagree.
def shanghaitech_gt_file(img: Path) -> Path:
    """``<split>/images/IMG_3.jpg`` -> ``<split>/ground-truth/GT_IMG_3.mat``."""
    return img.parent.parent / "ground-truth" / f"GT_{img.stem}.mat"


def ucf_gt_file(img: Path) -> Path:
    """UCF_CC_50 and UCF-QNRF: ``3.jpg`` -> ``3_ann.mat`` beside it."""
    return img.with_name(f"{img.stem}_ann.mat")


def nwpu_gt_file(img: Path) -> Path:
    """``images/0001.jpg`` -> ``jsons/0001.json``."""
    return img.parent.parent / "jsons" / f"{img.stem}.json"


def jhu_gt_file(img: Path) -> Path:
    """``<split>/images/0001.jpg`` -> ``<split>/gt/0001.txt``."""
    return img.parent.parent / "gt" / f"{img.stem}.txt"


# -- ShanghaiTech A/B (and anything exported in that layout) ------------------------------------
MAX_NAMED = 10  # files named in one error message; the rest are counted
SHANGHAITECH_SPLITS = {"train_data": "train", "test_data": "test"}
JHU_SPLITS = ("train", "val", "test")
UCF_QNRF_SPLITS = {"Train": "train", "Test": "test"}


def shanghaitech(root: Path, report: list, **_) -> list[Sample]:
    out, missing = [], []
    for folder, split in SHANGHAITECH_SPLITS.items():
        for img in _images(root / folder / "images"):
            gt = shanghaitech_gt_file(img)
            if not gt.is_file():
                missing.append(f"{folder}/images/{img.name} (no ground-truth/{gt.name})")
            else:
                out.append(Sample(str(img), _gt(gt, "shanghaitech", report), split))
    if missing:  # all of them at once: a person fixes them in one go, not one run each
        more = len(missing) - MAX_NAMED
        shown = ", ".join(missing[:MAX_NAMED]) + (f" and {more} more" if more > 0 else "")
        raise DatasetLayoutError(f"{len(missing)} image(s) without ground truth: {shown}", root)
    return out


# -- UCF_CC_50 ------------------------------------------------------------------------------------
def ucf_fold(index: int, n_images: int = 50, n_folds: int = 5) -> int:
    """Fold (1..5) of the index-th image (0-based, by number) in the paper's 5-fold protocol.

    The protocol of Idrees et al. (CVPR 2013), followed by MCNN, CSRNet and SASNet: the 50 images
    in numeric order, in five consecutive folds of ten (1-10, 11-20, ...).
    """
    return index * n_folds // n_images + 1


def ucf_cc_50(root: Path, report: list, fold: int | None = None, **_) -> list[Sample]:
    anns = sorted(root.glob("*_ann.mat"), key=_natural)
    out = []
    for i, ann in enumerate(anns):
        k = ucf_fold(i, len(anns))
        split = f"fold{k}" if fold is None else ("test" if k == int(fold) else "train")
        pts_ann = read_points(ann, "ucf", report=report)
        out.append(Sample(pts_ann.image_path, pts_ann.points, split))
    return out


# -- UCF-QNRF -------------------------------------------------------------------------------------
def _limit(sample: Sample, max_side: int | None) -> Sample:
    """Downscale so the long side is at most max_side, points with it (the paper: 1920)."""
    if not max_side:
        return sample

    w, h = image_size(sample.image_path)
    scale = max_side / max(w, h)
    if scale < 1:
        sample.resize = (max(1, round(w * scale)), max(1, round(h * scale)))
        sx, sy = sample.resize[0] / w, sample.resize[1] / h
        sample.points = sample.points * np.array([sx, sy])
        sample.rois = [r * np.array([sx, sy]) for r in sample.rois]
    return sample


def ucf_qnrf(root: Path, report: list, max_side: int | None = 1920, **_) -> list[Sample]:
    out = []
    for folder, split in UCF_QNRF_SPLITS.items():
        for img in _images(root / folder):
            ann = ucf_gt_file(img)
            if ann.is_file():
                out.append(_limit(Sample(str(img), _gt(ann, "ucf", report), split), max_side))
    return out


# -- NWPU-Crowd -----------------------------------------------------------------------------------
def nwpu(root: Path, report: list, max_side: int | None = None, **_) -> list[Sample]:
    split_of = {}
    for split in ("train", "val", "test"):
        lst = root / f"{split}.txt"
        if lst.is_file():
            for line in lst.read_text().split("\n"):
                if line.strip():
                    split_of[line.split()[0]] = split
    out = []
    for img in _images(root / "images"):
        js = nwpu_gt_file(img)
        if js.is_file():  # the test split's annotations are not public
            s = Sample(str(img), _gt(js, "nwpu", report), split_of.get(img.stem, "all"))
            out.append(_limit(s, max_side))
    return out


# -- JHU-Crowd++ ----------------------------------------------------------------------------------
def jhu(root: Path, report: list, max_side: int | None = None, **_) -> list[Sample]:
    out = []
    for split in JHU_SPLITS:
        for img in _images(root / split / "images"):
            gt = jhu_gt_file(img)
            if gt.is_file():
                out.append(_limit(Sample(str(img), _gt(gt, "jhu", report), split), max_side))
    return out


# -- a folder of images with our annotation files ---------------------------------------------------
def annotated_folder(root: Path, report: list, project_dir: Path | None = None,
                     reviewed_only: bool = False, **_) -> list[Sample]:
    """The annotated images under ``root``, as the annotation store finds them (beside the image,
    in ``project_dir``, in annotation files under ``root``); unannotated images are left out and a
    damaged annotation file is an error naming it. Split from an annotation's ``"split"`` key,
    else "all"."""
    project = Project(Path(project_dir), Path(root)) if project_dir is not None else None
    out = []
    for img, ann in annotated_images([root], project):
        if reviewed_only and not ann.reviewed:
            continue
        split = ann.extra.get("split") if isinstance(ann.extra.get("split"), str) else "all"
        out.append(Sample(str(img), ann.points, split, ann.rois, None, ann.reviewed))
    return out


def has_annotation_files(root: Path) -> bool:
    return has_annotations(root)
