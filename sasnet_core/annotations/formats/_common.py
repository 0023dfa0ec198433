"""Shared helpers of the format adapters: errors that name the file and field, image lookup,
point validation and atomic writes."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from sasnet_core.annotations.annotation import Annotation
from sasnet_core.annotations.density import inside_image
from sasnet_core.annotations.fields import fail
from sasnet_core.io.atomic import atomic_write_text
from sasnet_core.io.imageio import IMAGE_SUFFIXES, image_size
from sasnet_core.util.errors import ImageReadError
from sasnet_core.util.logs import warn_once

log = logging.getLogger("sasnet_core.annotations.formats")



def mat_points(value, path, field: str) -> np.ndarray:
    """(N, 2) float64 from a MATLAB numeric array of x, y rows."""
    arr = np.asarray(value)
    if np.iscomplexobj(arr):
        fail(path, f"variable '{field}' holds complex numbers; expected real x, y coordinates")
    if arr.dtype.kind not in "iuf":
        fail(path, f"variable '{field}' must be a numeric array, got {arr.dtype.kind!r} "
                   f"({arr.dtype}) values")
    if arr.size == 0:
        return np.zeros((0, 2))
    if arr.ndim != 2 or arr.shape[1] != 2:
        hint = (" (2 rows: it looks transposed; save it as K x 2, one head per row)"
                if arr.ndim == 2 and arr.shape[0] == 2 else "")
        fail(path, f"variable '{field}' must be K x 2 (x, y per row), got "
                   f"{' x '.join(map(str, arr.shape))}{hint}")
    return np.ascontiguousarray(arr, dtype=np.float64)


def find_image(stems, dirs) -> str:
    """The first existing image ``dir/stem.ext``; else the first candidate with ``.jpg``."""
    for d in dirs:
        for stem in stems:
            for ext in IMAGE_SUFFIXES + tuple(e.upper() for e in IMAGE_SUFFIXES):
                cand = Path(d) / f"{stem}{ext}"
                if cand.is_file():
                    return str(cand.absolute())
    return str((Path(dirs[0]) / f"{stems[0]}.jpg").absolute())


def resolve_image(name: str, base_dir) -> str:
    """An image named inside an annotation file, relative to that file's folder (or ../images)."""
    p = Path(name)
    if p.is_absolute():
        return str(p)
    base = Path(base_dir).absolute()
    for cand in (base / p, base.parent / "images" / p, base / "images" / p):
        if cand.is_file():
            return os.path.normpath(cand)
    return os.path.normpath(base / p)


def relative_name(image_path: str, out_path) -> str:
    """Image name to store in a file at ``out_path``: relative to that file's folder (so the
    file and its images can move together), posix slashes. A relative ``image_path`` is taken
    relative to the working directory, as every other path a program is given."""
    try:
        image_path = os.path.relpath(os.path.abspath(image_path), Path(out_path).absolute().parent)
    except ValueError:  # another drive (Windows): only an absolute path can name it
        image_path = os.path.abspath(image_path)
    return image_path.replace(os.sep, "/")


def image_size_of(ann: Annotation):
    """(w, h) from the annotation, else from the image header when the image exists."""
    if ann.image_size is not None:
        return ann.image_size
    if ann.image_path and Path(ann.image_path).is_file():
        try:
            return image_size(ann.image_path)
        except ImageReadError:
            return None
    return None


def validate(ann: Annotation, path, field: str, outside: str = "keep", report=None) -> Annotation:
    """Reject NaN/infinite points; report points off the image and drop them if asked.

    ``outside``: "keep" (report only, the default: a data set's published count is kept),
    "drop" (report and remove) or "error" (raise). A point is off the image when x < 0, y < 0,
    x >= w + 1 or y >= h + 1, the rule of ``sasnet_core.annotations.density.inside_image``: MATLAB 1-based
    data (ShanghaiTech, UCF) reach x = w + 0.x legitimately.
    """
    pts = ann.points
    bad = ~np.isfinite(pts).all(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        fail(path, f"field '{field}' point {i} is not a finite number pair ({pts[i, 0]}, {pts[i, 1]})")
    for k, roi in enumerate(ann.rois):
        bad = ~np.isfinite(roi).all(axis=1)
        if bad.any():
            i = int(np.argmax(bad))
            fail(path, f"region of interest {k} vertex {i} is not a finite number pair "
                       f"({roi[i, 0]}, {roi[i, 1]})")
    if ann.image_size is not None and min(ann.image_size) <= 0:
        fail(path, f"image size {ann.image_size[0]}x{ann.image_size[1]} is not a size")
    ann.points = clean_coordinates(pts)
    ann.rois = [clean_coordinates(r) for r in ann.rois]
    pts = ann.points
    size = image_size_of(ann)
    if size is None:
        neg = (pts < 0).any(axis=1)
        off, where = neg, "negative coordinates"
    else:
        off = ~inside_image(pts, (size[1], size[0]))
        where = f"outside the {size[0]}x{size[1]} image"
    if off.any():
        i = int(np.argmax(off))
        msg = (f"field '{field}': {int(off.sum())} of {len(pts)} points {where}, "
               f"first is point {i} at ({pts[i, 0]:g}, {pts[i, 1]:g})")
        if outside == "error":
            fail(path, msg)
        action = "dropped" if outside == "drop" else "kept"
        note = f"{os.fspath(path)}: {msg}; {action}"
        if report is not None:
            report.append(note)
        else:  # nobody collects reports: leave it to the logging setup, once per file and problem
            warn_once(log, note)
        if outside == "drop":
            keep = ~off
            ann.points, ann.sources = ann.points[keep], ann.sources[keep]
    return ann


def write_text_atomic(path, text: str) -> None:
    atomic_write_text(path, text)


# -- coordinates without float noise ----------------------------------------------------------------
# MATLAB exports and float32 model outputs carry digits nobody measured: 312.9999999999999 for 313,
# 123.456787109375 for 123.45679. Every reader keeps a coordinate to SIGNIFICANT digits (a 10^-7
# pixel at 100,000 pixels), shortened to its float32 text when the value is a float32, and every
# writer writes that shortest text. The rule is idempotent, so A -> B -> A keeps every point exactly.
SIGNIFICANT = 12


def clean(v: float) -> float:
    v = float(v)
    if v.is_integer() or not np.isfinite(v):
        return v
    f32 = np.float32(v)
    if float(f32) == v:  # a float32 value: its own shortest text
        return float(np.format_float_positional(f32, unique=True))
    return float(f"{v:.{SIGNIFICANT}g}")


def clean_coordinates(arr: np.ndarray) -> np.ndarray:
    """``clean`` of every value, vectorised where it can be (a data set holds 10^5 points)."""
    arr = np.asarray(arr, np.float64)
    flat = arr.ravel().copy()
    with np.errstate(over="ignore", invalid="ignore"):
        todo = np.isfinite(flat) & (flat != np.floor(flat))
        f32 = todo & (flat.astype(np.float32).astype(np.float64) == flat)
    rest = todo & ~f32
    if rest.any():
        flat[rest] = [float(f"{v:.{SIGNIFICANT}g}") for v in flat[rest].tolist()]
    if f32.any():
        flat[f32] = [clean(v) for v in flat[f32].tolist()]
    return flat.reshape(arr.shape)


def fmt(v: float) -> str:
    """The shortest text of a clean coordinate ("12" for 12.0, "313" for 312.9999999999999)."""
    v = clean(v)
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)


def json_coordinates(arr) -> list:
    """Clean coordinates as JSON numbers (whole values as ints, so "313", not "313.0")."""
    return [int(c) if c.is_integer() and abs(c) < 1e15 else c
            for c in (clean(v) for v in np.asarray(arr, np.float64).ravel())]


def json_pairs(arr) -> list:
    flat = json_coordinates(arr)
    return [flat[i:i + 2] for i in range(0, len(flat), 2)]
