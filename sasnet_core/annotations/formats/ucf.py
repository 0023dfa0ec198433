"""UCF_CC_50 and UCF-QNRF ``*_ann.mat``: variable ``annPoints`` (K x 2, x then y)."""
from __future__ import annotations

from pathlib import Path

from sasnet_core.annotations.annotation import Annotation
from sasnet_core.annotations.fields import fail
from sasnet_core.annotations.formats import _matfile
from sasnet_core.annotations.formats._common import (
    clean_coordinates,
    find_image,
    mat_points,
)

NAME = "ucf"
DESCRIPTION = "UCF_CC_50 / UCF-QNRF N_ann.mat (annPoints)"
EXTENSIONS = (".mat",)
FIELD = "annPoints"
MULTI = False

def sniff(path: Path) -> bool:
    return path.suffix.lower() == ".mat" and "annPoints" in _matfile.variables(path)

def default_name(image_path: str) -> str:
    return f"{Path(image_path).stem}_ann.mat"

def read(path: Path) -> list[Annotation]:
    mat = _matfile.load(path)
    if FIELD not in mat:
        fail(path, f"no variable 'annPoints' (found: {_matfile.names(mat)})")
    pts = mat_points(mat[FIELD], path, FIELD)
    stem = path.stem[: -len("_ann")] if path.stem.endswith("_ann") else path.stem
    return [Annotation(find_image([stem], [path.parent]), None, pts)]

def write(anns: list[Annotation], path: Path) -> None:
    (ann,) = anns
    _matfile.save(path, {FIELD: clean_coordinates(ann.points).reshape(-1, 2)})
