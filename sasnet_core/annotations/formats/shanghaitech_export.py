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

from sasnet_core.annotations.annotation import Annotation
from sasnet_core.annotations.formats import shanghaitech
from sasnet_core.io import staging
from sasnet_core.io.imageio import read_image, write_image

SPLIT_DIRS = {"train": "train_data", "test": "test_data"}
STAGE_PREFIX = ".sasnet-export-"  # the layout is built here, inside the output, then moved in place


def assign_splits(n: int, test_fraction: float, seed: int = 0) -> list[str]:
    """A seeded shuffle: round(test_fraction * n) images for test (at least one when > 0)."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    n_test = 0 if test_fraction <= 0 else min(n, max(1, round(test_fraction * n)))
    test = set(order[:n_test])
    return ["test" if i in test else "train" for i in range(n)]


def export_shanghaitech(anns: list[Annotation], out_dir, test_fraction: float = 0.2,
                        seed: int = 0, splits: list[str] | None = None
                        ) -> tuple[dict[str, int], list[Path]]:
    """Write the layout above into ``out_dir``; ``splits`` ("train"/"test" per image) overrides
    the random split. Returns the number of images per split and the files written.

    The new layout is built in a hidden folder inside ``out_dir`` and moved into place only when
    complete, so a failure (a full disk, an unreadable image) leaves a previous export as it was.
    Whether replacing one is allowed is the caller's decision (``formats.export``).
    """
    out = Path(out_dir)
    if splits is None:
        splits = assign_splits(len(anns), test_fraction, seed)
    if len(splits) != len(anns) or not set(splits) <= set(SPLIT_DIRS):
        raise ValueError("splits must give 'train' or 'test' for every image")
    # Stages an interrupted export left (a kill, a power cut) are swept by ``io.staging``.
    with staging.staged(out, STAGE_PREFIX) as stage:
        rows = _write_layout(anns, splits, stage)
        with open(stage / "sources.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["split", "image", "source", "count"])
            w.writerows(rows)
        staging.install_entries(stage, out, (*SPLIT_DIRS.values(), "sources.csv"))
    counts = {k: splits.count(k) for k in SPLIT_DIRS}
    files = sorted(p for d in SPLIT_DIRS.values() if (out / d).is_dir() for p in (out / d).rglob("*")
                   if p.is_file())
    return counts, [*files, out / "sources.csv"]


def _write_layout(anns, splits, base_dir: Path) -> list[list]:
    numbers = {k: 0 for k in SPLIT_DIRS}
    rows = []
    for ann, split in zip(anns, splits):
        src = Path(ann.image_path)
        numbers[split] += 1
        name = f"IMG_{numbers[split]}"
        base = base_dir / SPLIT_DIRS[split]
        (base / "images").mkdir(parents=True, exist_ok=True)
        (base / "ground-truth").mkdir(parents=True, exist_ok=True)
        dst = base / "images" / f"{name}.jpg"
        if src.suffix.lower() in (".jpg", ".jpeg"):
            shutil.copyfile(src, dst)
        else:
            write_image(dst, read_image(src))
        shanghaitech.write([ann], base / "ground-truth" / f"GT_{name}.mat")
        rows.append([split, f"{name}.jpg", str(src), ann.count])
    return rows
