"""Import and export adapters for crowd annotation formats, and a registry to pick one.

Every adapter module has NAME, DESCRIPTION, EXTENSIONS, FIELD (named in error messages), MULTI
(one file holds many images), ``read(path) -> list[Annotation]``, ``write(anns, path)`` and
``default_name(image_path)`` (the file name the format's own data sets use for one image); KEEPS
says what beyond points it holds ("rois", "review"), so an export names what it leaves out, and
NAMES_IMAGE (default True) whether the file records its image.

Reading validates every field where it enters: a field of the wrong JSON type, a number written
as text (refused in every format), NaN or infinite points and ROI vertices, image sizes below 1,
complex or transposed MATLAB arrays, JSON nested too deeply and XML with entity declarations raise
``AnnotationFormatError`` naming the file and the field. Points off the image are reported and kept
(published counts stay intact), dropped with ``outside="drop"``, or refused with
``outside="error"``. Writing goes through ``export`` (``formats/export.py``).
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from sasnet_core.annotations.annotation import SUFFIX, Annotation
from sasnet_core.annotations.fields import fail, read_json, read_text
from sasnet_core.annotations.formats import _matfile
from sasnet_core.annotations.formats._common import validate

_MODULES = ("sasnet", "shanghaitech", "ucf", "nwpu", "jhu", "text", "csv_points", "labelme",
            "coco", "cvat", "via")


@dataclass(frozen=True)
class FormatSpec:
    name: str
    description: str
    extensions: tuple[str, ...]
    multi: bool  # one file holds many images (COCO, CVAT, VIA)
    module: ModuleType
    keeps: tuple[str, ...] = ()  # what it holds beyond points: "rois", "review"
    # The file records its image (a field, or a data set's naming rule such as GT_IMG_4.mat);
    # otherwise the image a reader returns is a guess from the file's own name.
    names_image: bool = True

    def read(self, path) -> list[Annotation]:
        return self.module.read(Path(path))

    def write(self, anns: list[Annotation], path) -> None:
        self.module.write(list(anns), Path(path))

    def default_name(self, image_path: str) -> str:
        return self.module.default_name(image_path)


def _load() -> dict[str, FormatSpec]:
    out = {}
    for mod_name in _MODULES:
        mod = importlib.import_module(f"sasnet_core.annotations.formats.{mod_name}")
        out[mod.NAME] = FormatSpec(mod.NAME, mod.DESCRIPTION, mod.EXTENSIONS, mod.MULTI, mod,
                                   getattr(mod, "KEEPS", ()), getattr(mod, "NAMES_IMAGE", True))
    return out


FORMATS: dict[str, FormatSpec] = _load()
ANNOTATION_SUFFIXES = (".json", ".mat", ".txt", ".csv", ".xml")


def detect_format(path) -> str:
    """Format name of an annotation file, by extension and then by content."""
    path = Path(path)
    name, ext = path.name.lower(), path.suffix.lower()
    if name.endswith(SUFFIX):
        return "sasnet"
    if ext == ".mat":
        for fmt in ("shanghaitech", "ucf"):
            if FORMATS[fmt].module.sniff(path):
                return fmt

        _matfile.load(path)  # a truncated/corrupt file fails here with its own message
        fail(path, "a .mat file without 'image_info' (ShanghaiTech) or 'annPoints' (UCF)")
    if ext == ".xml":
        return "cvat"
    if ext == ".csv":
        return "csv"
    if ext == ".txt":
        for line in read_text(path, allow_empty=True).splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                return "jhu" if len(line.replace(",", " ").split()) >= 6 else "text"
        return "jhu" if path.parent.name == "gt" else "text"
    if ext == ".json":
        data = read_json(path)
        for fmt in ("sasnet", "labelme", "coco", "nwpu", "via"):
            if FORMATS[fmt].module.sniff_data(data):
                return fmt
        keys = ", ".join(list(data)[:8]) if isinstance(data, dict) else type(data).__name__
        fail(path, f"JSON matches no known format (LabelMe 'shapes', COCO 'images'+"
                   f"'annotations', NWPU 'img_id'+'points', VIA 'filename'+'regions', SASNet "
                   f"'format'); top-level keys: {keys}")
    fail(path, f"unknown annotation file type '{ext}' (known: {', '.join(ANNOTATION_SUFFIXES)})")


def get_format(name: str) -> FormatSpec:
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown format {name!r}; known: {', '.join(FORMATS)}") from None


def read_annotations(path, format: str | None = None, *, outside: str = "keep",
                     report: list | None = None) -> list[Annotation]:
    """Every image's annotation in one file (one for most formats, many for COCO/CVAT/VIA)."""
    spec = get_format(format or detect_format(path))
    anns = spec.read(path)
    for ann in anns:
        validate(ann, path, spec.module.FIELD, outside, report)
    return anns


def read_points(path, format: str | None = None, **kw) -> Annotation:
    """The annotation of the one image a file describes (error if it holds several)."""
    anns = read_annotations(path, format, **kw)
    if len(anns) != 1:
        fail(path, f"file holds {len(anns)} images; use read_annotations for many")
    return anns[0]


@dataclass
class Placement:
    """An annotation file read onto one open image (``read_for_image``): its annotation, now of
    that image, and what does not fit it, for the person to decide on before anything changes."""

    annotation: Annotation
    mismatches: list[str]  # "it is the annotation of IMG_4.jpg, not of a.jpg", ...
    outside: np.ndarray  # (N,) bool: points off the image

    def inside_only(self) -> Annotation:
        """The annotation without the points off the image."""
        ann = self.annotation.copy()
        keep = ~self.outside
        ann.points, ann.sources = ann.points[keep], ann.sources[keep]
        return ann


def read_for_image(path, image_path, image_size: tuple[int, int] | None,
                   format: str | None = None) -> Placement:
    """The annotation in ``path`` to put on the image ``image_path`` of ``image_size`` (width,
    height); from a file of many images, the one that is this image. What does not fit (the
    file names another image, was made on another size, has points off this one) is in
    ``mismatches`` rather than refused: a person may mean it, but must know before the points
    count as this image's."""
    spec = get_format(format or detect_format(path))
    anns = read_annotations(path, spec.name, report=[])  # points off the image are judged below
    if not anns:
        fail(path, "holds no image's annotation")
    name = Path(image_path).name
    if len(anns) > 1:
        anns = [_the_one_for(anns, image_path, path)]
    (ann,) = anns
    mismatches = []
    own = Path(ann.image_path).name if ann.image_path and spec.names_image else None
    if own and Path(own).stem != Path(name).stem:
        mismatches.append(f"it is the annotation of {own}, not of {name}")
    ann.image_path = os.fspath(image_path)  # the open image: the size message names it
    problems, outside = ann.misfit(image_size)
    mismatches += problems
    ann.image_size = tuple(image_size) if image_size else ann.image_size
    return Placement(ann, mismatches, outside)


def _the_one_for(anns: list[Annotation], image_path, path) -> Annotation:
    """The entry of a many-image file that is ``image_path``: the one whose path shares the most
    trailing parts with it (a data set holds train/.../IMG_1.jpg and test/.../IMG_1.jpg), else
    the one of the same stem."""
    want = Path(os.path.abspath(image_path)).parts[::-1]

    def shared(ann: Annotation) -> int:
        parts = Path(os.path.abspath(ann.image_path)).parts[::-1] if ann.image_path else ()
        n = 0
        while n < min(len(parts), len(want)) and parts[n] == want[n]:
            n += 1
        return n

    scores = [shared(a) for a in anns]
    best = max(scores)
    named = [a for a, s in zip(anns, scores) if s == best and best > 0]
    named = named or [a for a in anns if a.image_path and Path(a.image_path).stem == Path(image_path).stem]
    if len(named) != 1:
        fail(path, f"holds {len(anns)} images and {'several are' if named else 'none is'} named "
                   f"{Path(image_path).name}")
    return named[0]


def write_annotations(anns: list[Annotation], path, format: str) -> None:
    spec = get_format(format)
    if not spec.multi and len(anns) != 1:
        raise ValueError(f"format {format!r} holds one image per file, got {len(anns)}")
    spec.write(anns, path)


def write_points(annotation: Annotation, path, format: str) -> None:
    write_annotations([annotation], path, format)



__all__ = ["FORMATS", "FormatSpec", "Placement", "detect_format", "get_format", "read_annotations",
           "read_for_image", "read_points", "write_annotations", "write_points"]
