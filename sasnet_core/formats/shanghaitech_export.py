"""Export annotated images as a ShanghaiTech-style data set other crowd code can train on:

    OUT/train_data/images/IMG_1.jpg   OUT/train_data/ground-truth/GT_IMG_1.mat
    OUT/test_data/images/IMG_1.jpg    OUT/test_data/ground-truth/GT_IMG_1.mat
    OUT/sources.csv                   (split, new name, original image path, count)

Images are renamed IMG_n.jpg because public loaders derive the ground-truth path from the image
path (``.jpg`` -> ``.mat``, ``images`` -> ``ground-truth``, ``IMG_`` -> ``GT_IMG_``). JPEG files are
copied byte for byte; other image types are re-encoded as JPEG (quality 95).
"""
from __future__ import annotations

import csv
import random
import shutil
from pathlib import Path

from sasnet_core.annotation import Annotation
from sasnet_core.atomic import atomic_path
from sasnet_core.errors import AnnotationFormatError, OutputExistsError
from sasnet_core.formats import shanghaitech

SPLIT_DIRS = {"train": "train_data", "test": "test_data"}


def assign_splits(n: int, test_fraction: float, seed: int = 0) -> list[str]:
    """A seeded shuffle: round(test_fraction * n) images for test (at least one when > 0)."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    n_test = 0 if test_fraction <= 0 else min(n, max(1, round(test_fraction * n)))
    test = set(order[:n_test])
    return ["test" if i in test else "train" for i in range(n)]


def export_shanghaitech(anns: list[Annotation], out_dir, test_fraction: float = 0.2,
                        seed: int = 0, splits: list[str] | None = None,
                        overwrite: bool = False) -> dict[str, int]:
    """Write the layout above; ``splits`` ("train"/"test" per image) overrides the random split.
    Returns the number of images per split."""
    out = Path(out_dir)
    for d in SPLIT_DIRS.values():
        if (out / d).exists() and any((out / d).rglob("*")) and not overwrite:
            raise OutputExistsError("folder is not empty; choose another folder or overwrite",
                                    out / d)
    if splits is None:
        splits = assign_splits(len(anns), test_fraction, seed)
    if len(splits) != len(anns) or not set(splits) <= set(SPLIT_DIRS):
        raise ValueError("splits must give 'train' or 'test' for every image")
    from sasnet_core.imageio import read_image, write_image

    # Every image checked before anything is written: a half-written export would block the
    # next attempt ("folder is not empty").
    for ann in anns:
        if not Path(ann.image_path).is_file():
            raise AnnotationFormatError("image of this annotation not found", ann.image_path)
    numbers = {k: 0 for k in SPLIT_DIRS}
    rows = []
    for ann, split in zip(anns, splits):
        src = Path(ann.image_path)
        numbers[split] += 1
        name = f"IMG_{numbers[split]}"
        base = out / SPLIT_DIRS[split]
        (base / "images").mkdir(parents=True, exist_ok=True)
        (base / "ground-truth").mkdir(parents=True, exist_ok=True)
        dst = base / "images" / f"{name}.jpg"
        if src.suffix.lower() in (".jpg", ".jpeg"):
            with atomic_path(dst) as tmp:
                shutil.copyfile(src, tmp)
        else:
            write_image(dst, read_image(src))
        shanghaitech.write([ann], base / "ground-truth" / f"GT_{name}.mat")
        rows.append([split, f"{name}.jpg", str(src), ann.count])
    with atomic_path(out / "sources.csv") as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["split", "image", "source", "count"])
        w.writerows(rows)
    return numbers
