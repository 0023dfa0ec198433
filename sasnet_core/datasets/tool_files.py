"""Annotation tools' files beside their images, read as a data set: a LabelMe JSON per image
(``a.jpg`` + ``a.json``), or one COCO, CVAT or VIA file that describes many images of its folder.

``labelme_file`` and ``collection_entry`` name the file (and entry) of one image; the two readers
at the end turn a folder into ``Sample``s with them. A file of many images is parsed once per
change on disk (its path, size and time are the cache key), so opening a folder of 1,000 images
that one COCO file describes reads that file once, not 1,000 times.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

from sasnet_core.annotations.annotation import SUFFIX, Annotation
from sasnet_core.annotations.fields import fail
from sasnet_core.annotations.formats import (
    detect_format,
    get_format,
    read_annotations,
    read_points,
)
from sasnet_core.annotations.formats._common import validate
from sasnet_core.datasets.layouts import Sample
from sasnet_core.io.imageio import image_size
from sasnet_core.io.inputs import collect_inputs
from sasnet_core.util.errors import SASNetError

COLLECTION_FORMATS = ("coco", "cvat", "via")  # one file, many images
_COLLECTION_SUFFIXES = (".json", ".xml")

_lock = threading.Lock()
_folder_cache: dict[str, tuple[int, list[Path]]] = {}  # folder -> (mtime_ns, collection files)
_file_cache: dict[str, tuple[tuple[int, int], object]] = {}  # file -> ((mtime_ns, size), anns | error)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _format_of(path: Path) -> str | None:
    """The format of an annotation file, or None when it is none we know (or cannot be read:
    a stray unreadable JSON beside the images is not taken for anyone's ground truth)."""
    try:
        return detect_format(path)
    except SASNetError:
        return None


def labelme_file(img: Path) -> Path | None:
    """``a.json`` beside ``a.jpg`` when it is a LabelMe file, else None."""
    js = img.with_suffix(".json")
    if js.is_file() and _format_of(js) == "labelme":
        return js
    return None


def collection_files(folder: Path) -> list[Path]:
    """The COCO, CVAT and VIA files in ``folder`` (not below it), sorted by name."""
    folder = Path(folder)
    stamp = _stamp(folder)
    if stamp is None:
        return []
    key = os.path.abspath(folder)
    with _lock:
        cached = _folder_cache.get(key)
        if cached is not None and cached[0] == stamp[0]:
            return list(cached[1])
    found = []
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        names = []
    for name in names:
        path = folder / name
        if (name.lower().endswith(_COLLECTION_SUFFIXES) and not name.endswith(SUFFIX)
                and not name.startswith(".") and path.is_file()
                and _format_of(path) in COLLECTION_FORMATS):
            found.append(path)
    with _lock:
        _folder_cache[key] = (stamp[0], found)
    return list(found)


def read_collection(path: Path) -> list[Annotation]:
    """Every image's annotation in one COCO / CVAT / VIA file, parsed once per change on disk.
    A damaged file raises its error (naming it) each time it is asked for."""
    stamp, key = _stamp(path), os.path.abspath(path)
    with _lock:
        cached = _file_cache.get(key)
    if cached is not None and cached[0] == stamp:
        value = cached[1]
    else:
        try:
            value = read_annotations(path, report=[])  # points off the image: judged per image
        except SASNetError as exc:
            value = exc
        with _lock:
            _file_cache[key] = (stamp, value)
    if isinstance(value, SASNetError):
        raise value
    return [a.copy() for a in value]


def _names(ann: Annotation, img: Path) -> bool:
    """Whether an entry of a collection file is ``img``: the same file when its path resolves,
    else the same name (tools often keep only the name, or a path on another machine)."""
    if not ann.image_path:
        return False
    named = Path(os.path.abspath(ann.image_path))
    if named.exists():
        return os.path.normcase(named) == os.path.normcase(os.path.abspath(img))
    return named.name == img.name


def collection_entry(img: Path) -> tuple[Path, str] | None:
    """(the collection file beside ``img`` that holds it, its format), or None. When none names
    it but one of them cannot be read, that one: it may be the image's, and reading the entry
    (``collection_annotation``) names the damage instead of showing the image unannotated."""
    damaged = None
    for path in collection_files(img.parent):
        try:
            anns = read_collection(path)
        except SASNetError:
            damaged = damaged or path
            continue
        if any(_names(a, img) for a in anns):
            return path, _format_of(path)
    return (damaged, _format_of(damaged)) if damaged is not None else None


def collection_annotation(path: Path, img: Path) -> Annotation:
    """The entry of ``img`` in the collection file ``path``."""
    for ann in read_collection(path):
        if _names(ann, img):
            ann.image_path = str(img)
            return ann
    fail(path, f"holds no entry for {img.name}")


# -- the readers of ``datasets.detect.LAYOUTS`` -----------------------------------------------------
def _images(root: Path) -> list[Path]:
    return collect_inputs([root], recursive=False).images if root.is_dir() else []


def _misfit(ann: Annotation, img: Path, file: Path, report: list) -> None:
    """A tool's file records its image's size, which may not be this image's (made on another
    copy, the image resized since): checked against the image itself, said in ``report``."""
    ann.image_path = str(img)
    for problem in ann.misfit(image_size(img))[0]:
        report.append(f"{file}: {problem} (kept as the file has them)")


def labelme(root: Path, report: list, **_) -> list:
    out = []
    for img in _images(root):
        js = labelme_file(img)
        if js is not None:
            ann = read_points(js, "labelme", report=report)
            _misfit(ann, img, js, report)
            out.append(Sample(str(img), ann.points, "all", list(ann.rois)))
    return out


def has_labelme(root: Path) -> bool:
    return any(labelme_file(img) is not None for img in _images(root)[:50])


def collection(root: Path, report: list, **_) -> list:
    out = []
    for img in _images(root):
        entry = collection_entry(img)
        if entry is not None:
            ann = collection_annotation(entry[0], img)
            validate(ann, entry[0], get_format(entry[1]).module.FIELD, "keep", report)
            _misfit(ann, img, entry[0], report)
            out.append(Sample(str(img), ann.points, "all", list(ann.rois)))
    return out


def has_collection(root: Path) -> bool:
    return bool(collection_files(root))
