"""JHU-Crowd++ ``gt/NNNN.txt``: one head per line, ``x y w h occlusion blur``.

An empty file is a valid image without people (JHU has such images). The box size, occlusion
and blur are kept through a round trip while the point list is unchanged in length.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from sasnet_core.annotations.annotation import Annotation
from sasnet_core.annotations.fields import fail, read_text
from sasnet_core.annotations.formats._common import find_image, fmt, write_text_atomic

NAME = "jhu"
DESCRIPTION = "JHU-Crowd++ gt/*.txt (x y w h occlusion blur)"
EXTENSIONS = (".txt",)
FIELD = "x y"
MULTI = False


def parse_rows(path: Path, min_cols: int, what: str) -> np.ndarray:
    rows = []
    for n, line in enumerate(read_text(path, allow_empty=True).splitlines(), 1):
        parts = line.replace(",", " ").split()
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts) < min_cols:
            fail(path, f"line {n}: expected {what}, got {len(parts)} value(s): {line.strip()!r}")
        try:
            row = [float(v) for v in parts]
        except ValueError:
            fail(path, f"line {n}: not numbers: {line.strip()[:80]!r}")
        if not all(math.isfinite(v) for v in row):
            fail(path, f"line {n}: not a finite number: {line.strip()[:80]!r}")
        rows.append(row)
    width = max((len(r) for r in rows), default=min_cols)
    if any(len(r) != width for r in rows):
        fail(path, "lines have different numbers of columns")
    return np.array(rows, np.float64).reshape(-1, width)


def default_name(image_path: str) -> str:
    return f"{Path(image_path).stem}.txt"


def read(path: Path) -> list[Annotation]:
    rows = parse_rows(path, 6, "6 values 'x y w h occlusion blur'")
    image = find_image([path.stem], [path.parent.parent / "images", path.parent])
    extra = {"jhu_attributes": rows[:, 2:6].tolist()} if len(rows) else {}
    return [Annotation(image, None, rows[:, :2], extra=extra)]


def write(anns: list[Annotation], path: Path) -> None:
    (ann,) = anns
    attrs = ann.extra.get("jhu_attributes")
    if not isinstance(attrs, list) or len(attrs) != len(ann.points):
        attrs = [[0, 0, 0, 0]] * len(ann.points)  # unknown box, occlusion, blur
    lines = [" ".join(fmt(v) for v in (x, y, *a)) for (x, y), a in zip(ann.points, attrs)]
    write_text_atomic(path, "".join(line + "\n" for line in lines))
