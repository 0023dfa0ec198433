"""ShanghaiTech ``GT_IMG_n.mat``: ``image_info{1}.location`` (K x 2, x then y) and ``.number``.

Written with scipy.io.savemat as the nested MATLAB cell/struct the original files hold, so the
indexing public crowd code uses, ``mat["image_info"][0, 0][0, 0][0]``, gives the locations.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sasnet_core.annotations.annotation import Annotation
from sasnet_core.annotations.fields import fail
from sasnet_core.annotations.formats import _matfile
from sasnet_core.annotations.formats._common import (
    clean_coordinates,
    find_image,
    mat_points,
)

NAME = "shanghaitech"
DESCRIPTION = "ShanghaiTech GT_IMG_n.mat (image_info location/number)"
EXTENSIONS = (".mat",)
FIELD = "image_info.location"
MULTI = False


def sniff(path: Path) -> bool:
    return path.suffix.lower() == ".mat" and "image_info" in _matfile.variables(path)


def default_name(image_path: str) -> str:
    return f"GT_{Path(image_path).stem}.mat"


def read(path: Path) -> list[Annotation]:
    mat = _matfile.load(path)
    if "image_info" not in mat:
        fail(path, f"no variable 'image_info' (found: {_matfile.names(mat)})")
    try:
        rec = mat["image_info"][0, 0][0, 0]
        loc = rec["location"]
    except (IndexError, ValueError, KeyError, TypeError):
        fail(path, "field 'image_info' is not the ShanghaiTech struct {location, number}")
    pts = mat_points(loc, path, FIELD)
    stem = path.stem[3:] if path.stem.startswith("GT_") else path.stem
    image = find_image([stem], [path.parent.parent / "images", path.parent])
    extra = {}
    try:
        number = np.asarray(rec["number"])
    except (ValueError, KeyError):
        number = np.zeros(0)  # optional: the points are the truth
    if number.size:
        if number.size != 1 or number.dtype.kind not in "iuf" or not np.isfinite(number).all() \
                or float(number.ravel()[0]) != int(number.ravel()[0]):
            fail(path, f"field 'image_info.number' must be one whole number, got "
                       f"{number.ravel()[:3]!r:.60}")
        if int(number.ravel()[0]) != len(pts):
            extra["shanghaitech_number"] = int(number.ravel()[0])  # kept for the report
    return [Annotation(image, None, pts, extra=extra)]


def write(anns: list[Annotation], path: Path) -> None:
    (ann,) = anns
    rec = np.empty((1, 1), dtype=[("location", "O"), ("number", "O")])
    rec[0, 0]["location"] = clean_coordinates(ann.points).reshape(-1, 2)
    rec[0, 0]["number"] = np.array([[len(ann.points)]], np.float64)
    cell = np.empty((1, 1), dtype=object)
    cell[0, 0] = rec
    _matfile.save(path, {"image_info": cell})
