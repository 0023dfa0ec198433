"""VIA (VGG Image Annotator 2) JSON: per image ``regions`` whose ``shape_attributes`` are points
(``cx``, ``cy``) or ROI polygons (``all_points_x``, ``all_points_y``). Reads both the annotation
export and a whole project file (``_via_img_metadata``)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sasnet_core.annotation import Annotation
from sasnet_core.formats._common import (
    fail, read_json, relative_name, resolve_image, write_text_atomic)

NAME = "via"
DESCRIPTION = "VIA 2 JSON (point regions; polygons as ROI)"
EXTENSIONS = (".json",)
FIELD = "regions"
MULTI = True


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
        regions = entry["regions"]
        if isinstance(regions, dict):  # VIA 1 stored regions as {"0": {...}}
            regions = list(regions.values())
        pts, rois = [], []
        for i, reg in enumerate(regions):
            sa = reg.get("shape_attributes", {}) if isinstance(reg, dict) else {}
            where = f"{key}.regions[{i}].shape_attributes"
            try:
                if sa.get("name") == "point":
                    pts.append((float(sa["cx"]), float(sa["cy"])))
                elif sa.get("name") in ("polygon", "polyline") and len(sa["all_points_x"]) >= 3:
                    rois.append(np.stack([np.asarray(sa["all_points_x"], float),
                                          np.asarray(sa["all_points_y"], float)], axis=1))
            except (KeyError, TypeError, ValueError):
                fail(path, f"field '{where}' lacks numeric cx/cy or all_points_x/y")
        anns.append(Annotation(resolve_image(entry["filename"], path.parent), None,
                               np.array(pts).reshape(-1, 2), rois=rois))
    return anns


def write(anns: list[Annotation], path: Path) -> None:
    out = {}
    for ann in anns:
        name = relative_name(ann.image_path, path)
        regions = [{"shape_attributes": {"name": "point", "cx": float(x), "cy": float(y)},
                    "region_attributes": {"label": "head"}} for x, y in ann.points]
        regions += [{"shape_attributes": {"name": "polygon", "all_points_x": r[:, 0].tolist(),
                                          "all_points_y": r[:, 1].tolist()},
                     "region_attributes": {"label": "roi"}} for r in ann.rois]
        # VIA keys entries by file name + byte size; -1 when the image is not at hand.
        size = Path(ann.image_path).stat().st_size if Path(ann.image_path).is_file() else -1
        out[f"{Path(name).name}{size}"] = {"filename": name, "size": size, "regions": regions,
                                           "file_attributes": {}}
    write_text_atomic(path, json.dumps(out))
