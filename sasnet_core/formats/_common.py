"""Shared helpers of the format adapters: errors that name the file and field, image lookup,
point validation and atomic writes."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from sasnet_core.annotation import Annotation
from sasnet_core.errors import AnnotationFormatError, ImageReadError
from sasnet_core.imageio import IMAGE_SUFFIXES

log = logging.getLogger("sasnet_core.formats")



def fail(path, message: str):
    raise AnnotationFormatError(message, path)


def read_bytes(path, allow_empty: bool = False) -> bytes:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        fail(path, "file does not exist")
    except OSError as exc:
        fail(path, f"cannot read file ({exc.strerror or exc})")
    if not allow_empty and not data.strip():
        fail(path, "file is empty")
    return data


def read_text(path, allow_empty: bool = False) -> str:
    data = read_bytes(path, allow_empty)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        fail(path, "not a UTF-8 text file")


def read_json(path):
    import json

    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        fail(path, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})")


def number_pairs(value, path, field: str) -> np.ndarray:
    """(N, 2) float64 from a list of [x, y]; the error names the field."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        fail(path, f"field '{field}' must hold [x, y] number pairs")
    if arr.size == 0:
        return np.zeros((0, 2))
    if arr.ndim != 2 or arr.shape[1] < 2:
        fail(path, f"field '{field}' must be a list of [x, y] pairs, got shape {arr.shape}")
    return np.ascontiguousarray(arr[:, :2])


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
    """Image name to store in a file at ``out_path``: relative to its folder, posix slashes."""
    if os.path.isabs(image_path):
        try:
            image_path = os.path.relpath(image_path, Path(out_path).absolute().parent)
        except ValueError:
            pass
    return image_path.replace(os.sep, "/")


def image_size_of(ann: Annotation):
    """(w, h) from the annotation, else from the image header when the image exists."""
    if ann.image_size is not None:
        return ann.image_size
    if ann.image_path and Path(ann.image_path).is_file():
        from sasnet_core.imageio import image_size

        try:
            return image_size(ann.image_path)
        except ImageReadError:
            return None
    return None


def validate(ann: Annotation, path, field: str, outside: str = "keep", report=None) -> Annotation:
    """Reject NaN/infinite points; report points off the image and drop them if asked.

    ``outside``: "keep" (report only, the default: a data set's published count is kept),
    "drop" (report and remove) or "error" (raise). A point is off the image when x < 0, y < 0,
    x >= w + 1 or y >= h + 1, the rule of ``sasnet_core.density.inside_image``: MATLAB 1-based
    data (ShanghaiTech, UCF) reach x = w + 0.x legitimately.
    """
    pts = ann.points
    bad = ~np.isfinite(pts).all(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        fail(path, f"field '{field}' point {i} is not a finite number pair ({pts[i, 0]}, {pts[i, 1]})")
    size = image_size_of(ann)
    if size is None:
        neg = (pts < 0).any(axis=1)
        off, where = neg, "negative coordinates"
    else:
        from sasnet_core.density import inside_image

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
        else:  # nobody collects reports: leave it to the logging setup
            log.warning(note)
        if outside == "drop":
            keep = ~off
            ann.points, ann.sources = ann.points[keep], ann.sources[keep]
    return ann


def write_text_atomic(path, text: str) -> None:
    from sasnet_core.atomic import atomic_write_text

    atomic_write_text(path, text)


def fmt(v: float) -> str:
    """Shortest text that reads back as the same float ("12" for 12.0)."""
    v = float(v)
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
