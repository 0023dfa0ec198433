"""COCO keypoints JSON: one annotation per person with a single ``head`` keypoint.

Reading accepts any category whose ``keypoints`` list names ``head`` (its position is used) and
skips keypoints with visibility 0. Many images per file.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sasnet_core.annotation import SOURCE_MODEL, Annotation
from sasnet_core.formats._common import (
    fail, read_json, relative_name, resolve_image, write_text_atomic)

NAME = "coco"
DESCRIPTION = "COCO keypoints JSON (one 'head' keypoint per person)"
EXTENSIONS = (".json",)
FIELD = "annotations.keypoints"
MULTI = True


def sniff_data(data) -> bool:
    return isinstance(data, dict) and "images" in data and "annotations" in data


def default_name(image_path: str) -> str:
    return "annotations.json"


def read(path: Path) -> list[Annotation]:
    data = read_json(path)
    if not sniff_data(data):
        fail(path, "expected COCO fields 'images', 'annotations' and 'categories'")
    head_index = {}
    for c in data.get("categories", []):
        names = [str(k).lower() for k in c.get("keypoints", [])]
        if "head" in names:
            head_index[c.get("id")] = names.index("head")
    if not head_index:
        fail(path, "field 'categories': no category has a 'head' keypoint")
    per_image: dict = {}
    for i, a in enumerate(data["annotations"]):
        k = head_index.get(a.get("category_id"))
        if k is None:
            continue
        kp = a.get("keypoints")
        try:
            x, y, v = (float(t) for t in kp[3 * k : 3 * k + 3])
        except (TypeError, ValueError):
            fail(path, f"field 'annotations[{i}].keypoints' must hold x, y, visibility triples")
        if v > 0:
            src = SOURCE_MODEL if a.get("sasnet_source") == "model" else 0
            per_image.setdefault(a.get("image_id"), []).append((x, y, src))
    anns = []
    for i, im in enumerate(data["images"]):
        if "file_name" not in im or "id" not in im:
            fail(path, f"field 'images[{i}]' needs 'id' and 'file_name'")
        rows = np.array(per_image.get(im["id"], []), np.float64).reshape(-1, 3)
        try:
            size = (int(im["width"]), int(im["height"])) if im.get("width") and im.get("height") else None
        except (TypeError, ValueError):
            fail(path, f"field 'images[{i}]': 'width' and 'height' must be integers, got "
                       f"{im.get('width')!r} and {im.get('height')!r}")
        anns.append(Annotation(resolve_image(im["file_name"], path.parent), size,
                               rows[:, :2], rows[:, 2].astype(np.uint8)))
    return anns


def write(anns: list[Annotation], path: Path) -> None:
    images, annotations = [], []
    for img_id, ann in enumerate(anns, 1):
        im = {"id": img_id, "file_name": relative_name(ann.image_path, path)}
        if ann.image_size is not None:
            im["width"], im["height"] = ann.image_size
        images.append(im)
        for (x, y), s in zip(ann.points, ann.sources):
            a = {"id": len(annotations) + 1, "image_id": img_id, "category_id": 1,
                 "keypoints": [float(x), float(y), 2], "num_keypoints": 1,
                 "bbox": [float(x), float(y), 0.0, 0.0], "area": 0.0, "iscrowd": 0}
            if s == SOURCE_MODEL:
                a["sasnet_source"] = "model"
            annotations.append(a)
    data = {"info": {"description": "exported by SASNet Studio"}, "images": images,
            "annotations": annotations,
            "categories": [{"id": 1, "name": "person", "supercategory": "person",
                            "keypoints": ["head"], "skeleton": []}]}
    write_text_atomic(path, json.dumps(data))
