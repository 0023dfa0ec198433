"""Our own annotation file (``IMG_1.jpg.sasnet.json``), as a format like the others."""
from __future__ import annotations

from pathlib import Path

from sasnet_core.annotations.annotation import (
    SUFFIX,
    Annotation,
    load_annotation,
    save_annotation,
)
from sasnet_core.annotations.formats._common import clean_coordinates

NAME = "sasnet"
DESCRIPTION = "SASNet Studio annotation JSON (IMAGE.sasnet.json)"
EXTENSIONS = (SUFFIX,)
FIELD = "points"
MULTI = False
KEEPS = ("rois", "review")  # beyond points (everything an annotation holds); see export.left_out


def sniff_data(data) -> bool:
    return isinstance(data, dict) and data.get("format") == "sasnet-annotation"


def default_name(image_path: str) -> str:
    return Path(image_path).name + SUFFIX


def read(path: Path) -> list[Annotation]:
    return [load_annotation(path)]


def write(anns: list[Annotation], path: Path) -> None:
    ann = anns[0].copy()  # written without float noise, as every other format
    ann.points = clean_coordinates(ann.points)
    ann.rois = [clean_coordinates(r) for r in ann.rois]
    save_annotation(ann, path)
