"""LabelMe JSON: ``point`` shapes are heads; ``polygon`` shapes labelled ``roi`` are regions of
interest. Other shapes are kept aside and written back unchanged."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sasnet_core.annotations.annotation import Annotation
from sasnet_core.annotations.fields import (
    fail,
    json_field,
    json_size,
    point_pairs,
    read_json,
)
from sasnet_core.annotations.formats._common import (
    json_pairs,
    relative_name,
    resolve_image,
    write_text_atomic,
)

NAME = "labelme"
DESCRIPTION = "LabelMe JSON (point shapes; polygons labelled 'roi')"
EXTENSIONS = (".json",)
FIELD = "shapes"
MULTI = False
KEEPS = ("rois",)  # beyond points (regions of interest as polygons labelled "roi"); see export.left_out
ROI_LABELS = ("roi", "region of interest")


def sniff_data(data) -> bool:
    return isinstance(data, dict) and "shapes" in data


def default_name(image_path: str) -> str:
    return f"{Path(image_path).stem}.json"


def read(path: Path) -> list[Annotation]:
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
        fail(path, "field 'shapes' must be a list (is this a LabelMe file?)")
    pts, rois, other = [], [], []
    for i, shape in enumerate(data["shapes"]):
        json_field(shape, dict, path, f"shapes[{i}]")
        kind = json_field(shape.get("shape_type") or "polygon", str, path, f"shapes[{i}].shape_type")
        label = json_field(shape.get("label", ""), str, path, f"shapes[{i}].label").lower()
        xy = point_pairs(shape.get("points", []), path, f"shapes[{i}].points")
        if kind == "point":
            if len(xy) != 1:
                fail(path, f"field 'shapes[{i}].points': a point shape needs one [x, y]")
            pts.append(xy[0])
        elif kind == "polygon" and label in ROI_LABELS and len(xy) >= 3:
            rois.append(xy)
        else:
            other.append(shape)
    size = json_size(data.get("imageWidth"), data.get("imageHeight"), path, "imageWidth", "imageHeight")
    name = data.get("imagePath")
    if name is not None:
        json_field(name, str, path, "imagePath")
    image = resolve_image(name or path.stem + ".jpg", path.parent)
    extra = {"labelme_other_shapes": other} if other else {}
    return [Annotation(image, size, np.array(pts).reshape(-1, 2), rois=rois, extra=extra)]


def write(anns: list[Annotation], path: Path) -> None:
    (ann,) = anns
    shapes = [{"label": "head", "points": [xy], "group_id": None,
               "description": "", "shape_type": "point", "flags": {}} for xy in json_pairs(ann.points)]
    shapes += [{"label": "roi", "points": json_pairs(r), "group_id": None, "description": "",
                "shape_type": "polygon", "flags": {}} for r in ann.rois]
    shapes += list(ann.extra.get("labelme_other_shapes", []))
    data = {"version": "5.4.1", "flags": {}, "shapes": shapes,
            "imagePath": relative_name(ann.image_path, path), "imageData": None}
    if ann.image_size is not None:
        data["imageWidth"], data["imageHeight"] = ann.image_size
    write_text_atomic(path, json.dumps(data, indent=1))
