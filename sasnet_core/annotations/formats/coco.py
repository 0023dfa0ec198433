"""COCO keypoints JSON: one annotation per person with a single ``head`` keypoint.

Reading accepts any category whose ``keypoints`` list names ``head`` (its position is used) and
skips keypoints with visibility 0. Many images per file.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sasnet_core.annotations.annotation import SOURCE_MODEL, Annotation
from sasnet_core.annotations.fields import (
    fail,
    json_field,
    json_id,
    json_number,
    json_size,
    read_json,
)
from sasnet_core.annotations.formats._common import (
    json_coordinates,
    relative_name,
    resolve_image,
    write_text_atomic,
)

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
    for i, c in enumerate(json_field(data.get("categories", []), list, path, "categories")):
        json_field(c, dict, path, f"categories[{i}]")
        names = json_field(c.get("keypoints", []), list, path, f"categories[{i}].keypoints")
        names = [str(k).lower() for k in names]
        if "head" in names:
            head_index[json_id(c.get("id"), path, f"categories[{i}].id")] = names.index("head")
    if not head_index:
        fail(path, "field 'categories': no category has a 'head' keypoint")
    images = json_field(data["images"], list, path, "images")
    ids = {}
    for i, im in enumerate(images):
        json_field(im, dict, path, f"images[{i}]")
        if "file_name" not in im or "id" not in im:
            fail(path, f"field 'images[{i}]' needs 'id' and 'file_name'")
        key = json_id(im["id"], path, f"images[{i}].id")
        if key in ids:
            fail(path, f"field 'images[{i}].id': id {key!r} is also images[{ids[key]}]")
        ids[key] = i
        if not json_field(im["file_name"], str, path, f"images[{i}].file_name"):
            fail(path, f"field 'images[{i}].file_name' is empty")
    per_image: dict = {}
    for i, a in enumerate(json_field(data["annotations"], list, path, "annotations")):
        json_field(a, dict, path, f"annotations[{i}]")
        cat = a.get("category_id")
        k = head_index.get(cat) if isinstance(cat, (int, str)) and not isinstance(cat, bool) else None
        if k is None:
            continue  # another category (a person's box, a car): not a head
        kp = json_field(a.get("keypoints"), list, path, f"annotations[{i}].keypoints")
        if len(kp) < 3 * k + 3:
            fail(path, f"field 'annotations[{i}].keypoints' must hold x, y, visibility triples")
        x, y, v = (json_number(t, path, f"annotations[{i}].keypoints") for t in kp[3 * k: 3 * k + 3])
        image_id = json_id(a.get("image_id"), path, f"annotations[{i}].image_id")
        if image_id not in ids:
            fail(path, f"field 'annotations[{i}].image_id': no image has id {image_id!r}")
        if v > 0:
            src = SOURCE_MODEL if a.get("sasnet_source") == "model" else 0
            per_image.setdefault(image_id, []).append((x, y, src))
    anns = []
    for i, im in enumerate(images):
        rows = np.array(per_image.get(im["id"], []), np.float64).reshape(-1, 3)
        size = json_size(im.get("width"), im.get("height"), path, f"images[{i}].width", f"images[{i}].height")
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
        xy = json_coordinates(ann.points)
        for n, s in enumerate(ann.sources):
            x, y = xy[2 * n], xy[2 * n + 1]
            a = {"id": len(annotations) + 1, "image_id": img_id, "category_id": 1,
                 "keypoints": [x, y, 2], "num_keypoints": 1,
                 "bbox": [x, y, 0, 0], "area": 0, "iscrowd": 0}
            if s == SOURCE_MODEL:
                a["sasnet_source"] = "model"
            annotations.append(a)
    data = {"info": {"description": "exported by SASNet Studio"}, "images": images,
            "annotations": annotations,
            "categories": [{"id": 1, "name": "person", "supercategory": "person",
                            "keypoints": ["head"], "skeleton": []}]}
    write_text_atomic(path, json.dumps(data))
