"""CSV with a header row naming the columns ``x`` and ``y`` (any order, any case; a ``source``
column, person/model, is read and written too). Files without a header are read as x, y."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from sasnet_core.annotations.annotation import SOURCE_MODEL, SOURCE_PERSON, Annotation
from sasnet_core.annotations.fields import fail, read_text
from sasnet_core.annotations.formats._common import find_image, fmt, write_text_atomic

NAME = "csv"
DESCRIPTION = "CSV with columns x,y[,source]"
EXTENSIONS = (".csv",)
FIELD = "x,y"
MULTI = False
# The file says nothing of its image: the image it is read with is only guessed from its name.
NAMES_IMAGE = False


def default_name(image_path: str) -> str:
    return f"{Path(image_path).stem}.csv"


def read(path: Path) -> list[Annotation]:
    try:
        rows = list(csv.reader(io.StringIO(read_text(path))))
    except csv.Error as exc:  # a field over csv.field_size_limit(), a NUL byte, ...
        fail(path, f"not a readable CSV file ({exc})")
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:  # e.g. only separators: no header and no point
        fail(path, "no rows with values (expected a header 'x,y' and one row per head)")
    header = [c.strip().lower() for c in rows[0]]
    if "x" in header or "y" in header:
        if "x" not in header or "y" not in header:
            fail(path, f"header row needs columns 'x' and 'y', got {rows[0]}")
        ix, iy = header.index("x"), header.index("y")
        isrc = header.index("source") if "source" in header else None
        body, first = rows[1:], 2
    else:
        ix, iy, isrc, body, first = 0, 1, None, rows, 1
    pts = np.zeros((len(body), 2))
    src = np.full(len(body), SOURCE_PERSON, np.uint8)
    for n, row in enumerate(body):
        try:
            pts[n] = float(row[ix]), float(row[iy])
        except (ValueError, IndexError):
            fail(path, f"row {n + first}: columns 'x' and 'y' must be numbers, got {row}")
        if isrc is not None and isrc < len(row) and row[isrc].strip().lower() == "model":
            src[n] = SOURCE_MODEL
    return [Annotation(find_image([path.stem], [path.parent]), None, pts, src)]


def write(anns: list[Annotation], path: Path) -> None:
    (ann,) = anns
    lines = ["x,y,source"]
    lines += [f"{fmt(x)},{fmt(y)},{'model' if s == SOURCE_MODEL else 'person'}"
              for (x, y), s in zip(ann.points, ann.sources)]
    write_text_atomic(path, "\n".join(lines) + "\n")
