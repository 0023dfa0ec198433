"""VIA (VGG Image Annotator 2) JSON: per image ``regions`` whose ``shape_attributes`` are points
(``cx``, ``cy``) or ROI polygons (``all_points_x``, ``all_points_y``). Reads both the annotation
export and a whole project file (``_via_img_metadata``)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sasnet_core.annotations.annotation import Annotation
from sasnet_core.annotations.fields import (
    fail,
    json_field,
    json_number,
    number_list,
    read_json,
)
from sasnet_core.annotations.formats._common import (
    json_coordinates,
    relative_name,
    resolve_image,
    write_text_atomic,
)

NAME = "via"
DESCRIPTION = "VIA 2 JSON (point regions; polygons as ROI)"
EXTENSIONS = (".json",)
FIELD = "regions"
MULTI = True
KEEPS = ("rois",)  # beyond points (regions of interest as polygons labelled "roi"); see export.left_out


def _entries(data):
    if isinstance(data, dict) and isinstance(data.get("_via_img_metadata"), dict):
        data = data["_via_img_metadata"]
    return data


def sniff_data(data) -> bool:
    data = _entries(data)
    return (isinstance(data, dict) and bool(data)
            and all(isinstance(v, dict) and "filename" in v and "regions" in v for v in data.values()))


def default_name(image_path: str) -> str:
    return "via_annotations.json"


def read(path: Path) -> list[Annotation]:
    data = read_json(path)
    if not sniff_data(data):
        fail(path, "expected VIA entries {key: {'filename', 'regions', ...}}")
    anns = []
    for key, entry in _entries(data).items():
        name = json_field(entry["filename"], str, path, f"{key}.filename")
        if not name:
            fail(path, f"field '{key}.filename' is empty")
        regions = entry["regions"]
        if isinstance(regions, dict):  # VIA 1 stored regions as {"0": {...}}
            regions = list(regions.values())
        json_field(regions, list, path, f"{key}.regions")
        pts, rois = [], []
        for i, reg in enumerate(regions):
            where = f"{key}.regions[{i}].shape_attributes"
            json_field(reg, dict, path, f"{key}.regions[{i}]")
            sa = json_field(reg.get("shape_attributes"), dict, path, where)
            shape = sa.get("name")
            if shape == "point":
                if "cx" not in sa or "cy" not in sa:
                    fail(path, f"field '{where}': a point needs 'cx' and 'cy'")
                pts.append((json_number(sa["cx"], path, f"{where}.cx"),
                            json_number(sa["cy"], path, f"{where}.cy")))
            elif shape in ("polygon", "polyline"):
                xs = number_list(sa.get("all_points_x"), path, f"{where}.all_points_x")
                ys = number_list(sa.get("all_points_y"), path, f"{where}.all_points_y")
                if len(xs) != len(ys):
                    fail(path, f"field '{where}': all_points_x has {len(xs)} values but "
                               f"all_points_y {len(ys)}")
                if len(xs) >= 3:  # as LabelMe and CVAT: a 1- or 2-vertex "polygon" is no region
                    rois.append(np.stack([xs, ys], axis=1))
            else:
                # Heads drawn as rectangles or circles would silently count 0: say so instead.
                fail(path, f"field '{where}.name' is {shape!r:.40}; heads must be 'point' regions "
                           "and regions of interest 'polygon'")
        anns.append(Annotation(resolve_image(name, path.parent), None,
                               np.array(pts).reshape(-1, 2), rois=rois))
    return anns


def write(anns: list[Annotation], path: Path) -> None:
    out = {}
    for ann in anns:
        name = relative_name(ann.image_path, path)
        xy = json_coordinates(ann.points)
        regions = [{"shape_attributes": {"name": "point", "cx": xy[i], "cy": xy[i + 1]},
                    "region_attributes": {"label": "head"}} for i in range(0, len(xy), 2)]
        regions += [{"shape_attributes": {"name": "polygon",
                                          "all_points_x": json_coordinates(r[:, 0]),
                                          "all_points_y": json_coordinates(r[:, 1])},
                     "region_attributes": {"label": "roi"}} for r in ann.rois]
        # VIA keys entries by file name + byte size; -1 when the image is not at hand.
        size = Path(ann.image_path).stat().st_size if Path(ann.image_path).is_file() else -1
        out[f"{Path(name).name}{size}"] = {"filename": name, "size": size, "regions": regions,
                                           "file_attributes": {}}
    write_text_atomic(path, json.dumps(out))
