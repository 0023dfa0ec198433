"""NWPU-Crowd ``jsons/NNNN.json``: ``{"img_id": "0001.jpg", "human_num": N, "points": [[x, y]...],
"boxes": [[x1, y1, x2, y2]...]}``. Boxes are kept through a round trip when the points are."""
from __future__ import annotations

import json
from pathlib import Path

from sasnet_core.annotations.annotation import Annotation
from sasnet_core.annotations.fields import (
    fail,
    json_field,
    number_list,
    point_pairs,
    read_json,
)
from sasnet_core.annotations.formats._common import (
    find_image,
    json_pairs,
    write_text_atomic,
)

NAME = "nwpu"
DESCRIPTION = "NWPU-Crowd JSON (img_id, human_num, points)"
EXTENSIONS = (".json",)
FIELD = "points"
MULTI = False


def sniff_data(data) -> bool:
    return isinstance(data, dict) and "points" in data and ("human_num" in data or "img_id" in data)


def default_name(image_path: str) -> str:
    return f"{Path(image_path).stem}.json"


def read(path: Path) -> list[Annotation]:
    data = read_json(path)
    if not isinstance(data, dict):
        fail(path, "expected a JSON object with 'img_id', 'human_num' and 'points'")
    if "points" not in data:
        fail(path, f"missing field 'points' (found: {', '.join(map(str, data)) or 'nothing'})")
    pts = point_pairs(data["points"], path, FIELD)
    num = data.get("human_num")
    if num is not None and (isinstance(num, bool) or not isinstance(num, int) or num != len(pts)):
        fail(path, f"field 'human_num' is {num!r:.40} but 'points' holds {len(pts)} points")
    img_id = data.get("img_id")
    if img_id is not None and (isinstance(img_id, bool) or not isinstance(img_id, (str, int))):
        fail(path, f"field 'img_id' must be a file name, got {img_id!r:.40}")
    img_id = str(img_id or path.stem)
    if data.get("boxes") is not None:
        for i, box in enumerate(json_field(data["boxes"], list, path, "boxes")):
            number_list(box, path, f"boxes[{i}]")  # kept and written back: must be numbers
    stem = Path(img_id).stem
    image = find_image([stem], [path.parent.parent / "images", path.parent])
    extra = {"nwpu_boxes": data["boxes"]} if data.get("boxes") else {}
    return [Annotation(image, None, pts, extra=extra)]


def write(anns: list[Annotation], path: Path) -> None:
    (ann,) = anns
    boxes = ann.extra.get("nwpu_boxes", [])
    if not isinstance(boxes, list) or len(boxes) != len(ann.points):
        boxes = []  # boxes no longer match the (edited) points
    data = {"img_id": Path(ann.image_path).name, "human_num": len(ann.points),
            "points": json_pairs(ann.points), "boxes": boxes}
    write_text_atomic(path, json.dumps(data))
