"""Small data set folders in every layout the core reads, made at test time, with their counts.

``make_layout(kind, root)`` writes two or three 64 x 48 images and their ground truth in the
layout's own files (through ``sasnet_core.formats``, so each file is what that format's tools
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
    from sasnet_core.imageio import write_image

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, rng.integers(0, 255, (SIZE[1], SIZE[0], 3), dtype=np.uint8))
    return path


def heads(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform((2, 2), (SIZE[0] - 4, SIZE[1] - 4), size=(n, 2))


def _write(path: Path, image: Path, n: int, seed: int, fmt: str) -> None:
    from sasnet_core.annotation import Annotation
    from sasnet_core.formats import write_annotations

    path.parent.mkdir(parents=True, exist_ok=True)
    write_annotations([Annotation(str(image), SIZE, heads(n, seed))], path, fmt)


def make_layout(kind: str, root) -> dict[str, int]:
    from sasnet_core.annotation import Annotation
    from sasnet_core.formats import write_annotations

    root = Path(root)
    counts: dict[str, int] = {}
    if kind == "nwpu":
        for i, n in ((1, 3), (2, 5)):
            p = _image(root / "images" / f"{i:04d}.jpg", i)
            _write(root / "jsons" / f"{i:04d}.json", p, n, i, "nwpu")
            counts[p.name] = n
    elif kind == "jhu":
        for i, n in ((1, 4), (2, 2)):
            p = _image(root / "train" / "images" / f"{i:04d}.jpg", i)
            _write(root / "train" / "gt" / f"{i:04d}.txt", p, n, i, "jhu")
            counts[p.name] = n
    elif kind == "ucf_qnrf":
        for i, n in ((1, 6), (2, 1)):
            p = _image(root / "Train" / f"img_{i:04d}.jpg", i)
            _write(root / "Train" / f"img_{i:04d}_ann.mat", p, n, i, "ucf")
            counts[p.name] = n
    elif kind == "labelme":
        for i, n in ((1, 2), (2, 7)):
            p = _image(root / f"photo_{i}.jpg", i)
            _write(root / f"photo_{i}.json", p, n, i, "labelme")
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
