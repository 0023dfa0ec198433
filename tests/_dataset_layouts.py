"""Small data set folders in every layout the core reads, made at test time, with their counts.

``make_layout(kind, root)`` writes two or three 64 x 48 images and their ground truth in the
layout's own files (through ``sasnet_core.annotations.formats``, so each file is what that format's tools
write) and returns {image file name: head count}.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

SIZE = (64, 48)  # width, height
KINDS = ("nwpu", "jhu", "ucf_qnrf", "labelme", "coco", "cvat", "via")


def _image(path: Path, seed: int) -> Path:
    from sasnet_core.io.imageio import write_image

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, rng.integers(0, 255, (SIZE[1], SIZE[0], 3), dtype=np.uint8))
    return path


def heads(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform((2, 2), (SIZE[0] - 4, SIZE[1] - 4), size=(n, 2))


def _write(path: Path, image: Path, n: int, seed: int, fmt: str) -> None:
    from sasnet_core.annotations.annotation import Annotation
    from sasnet_core.annotations.formats import write_annotations

    path.parent.mkdir(parents=True, exist_ok=True)
    write_annotations([Annotation(str(image), SIZE, heads(n, seed))], path, fmt)


# Layouts with one ground-truth file per image: (image path, its file's path, format, (index,
# heads) per image), paths relative to the data set's root.
_ONE_FILE_EACH = {
    "nwpu": ("images/{i:04d}.jpg", "jsons/{i:04d}.json", "nwpu", ((1, 3), (2, 5))),
    "jhu": ("train/images/{i:04d}.jpg", "train/gt/{i:04d}.txt", "jhu", ((1, 4), (2, 2))),
    "ucf_qnrf": ("Train/img_{i:04d}.jpg", "Train/img_{i:04d}_ann.mat", "ucf", ((1, 6), (2, 1))),
    "labelme": ("photo_{i}.jpg", "photo_{i}.json", "labelme", ((1, 2), (2, 7))),
}


def make_layout(kind: str, root) -> dict[str, int]:
    from sasnet_core.annotations.annotation import Annotation
    from sasnet_core.annotations.formats import write_annotations

    root = Path(root)
    counts: dict[str, int] = {}
    if kind in _ONE_FILE_EACH:
        image_at, truth_at, fmt, heads_per_image = _ONE_FILE_EACH[kind]
        for i, n in heads_per_image:
            p = _image(root / image_at.format(i=i), i)
            _write(root / truth_at.format(i=i), p, n, i, fmt)
            counts[p.name] = n
    elif kind in ("coco", "cvat", "via"):
        anns = []
        for i, n in ((1, 3), (2, 8), (3, 0)):
            p = _image(root / f"frame_{i}.jpg", i)
            anns.append(Annotation(str(p), SIZE, heads(n, i)))
            counts[p.name] = n
        write_annotations(anns, root / ("annotations.xml" if kind == "cvat" else "annotations.json"), kind)
    else:
        raise ValueError(kind)
    return counts


def fingerprint(folder) -> dict[str, str]:
    """sha256 of every file below ``folder`` by relative path: a data set left byte for byte as
    it was compares equal, and a new file shows up too."""
    out = {}
    for dirpath, _, names in os.walk(folder):
        for name in names:
            p = Path(dirpath) / name
            out[p.relative_to(folder).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out
