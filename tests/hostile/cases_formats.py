"""Malformed files of every annotation format, read by ``sasnet convert FILE --to text``: each is
refused with one line naming the file (and the field), and nothing is written. Some odd but valid
files must be accepted, with the result checked."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hostile import ACCEPTED, Case, Ctx, write_input

COCO = {"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "keypoints": [10, 12, 2]}],
        "categories": [{"id": 1, "name": "person", "keypoints": ["head"]}]}
LABELME = {"shapes": [{"label": "head", "shape_type": "point", "points": [[10, 12]]}],
           "imagePath": "a.jpg", "imageWidth": 64, "imageHeight": 48}
NWPU = {"img_id": "a.jpg", "human_num": 1, "points": [[10, 12]], "boxes": [[8, 10, 12, 14]]}
VIA = {"a.jpg1": {"filename": "a.jpg", "size": 1, "file_attributes": {},
                  "regions": [{"shape_attributes": {"name": "point", "cx": 10, "cy": 12},
                               "region_attributes": {}}]}}
ROI = [[0, 0], [60, 0], [60, 40]]


def _changed(base: dict, path: tuple, value):
    data = json.loads(json.dumps(base))
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


def _nothing_written(ctx: Ctx, result) -> None:
    assert not (ctx.tmp / "out.txt").exists(), "a refused input still wrote an output"


def refused(name: str, file: str, content, *fields: str, src_format: str | None = None) -> Case:
    """``file`` holding ``content`` must be refused, naming the file and ``fields``."""
    def make(ctx: Ctx):
        src = content(ctx) if callable(content) else write_input(ctx.tmp / file, content)
        extra = ["--from", src_format] if src_format else []
        return ["convert", src, *extra, "--to", "text", "--out", ctx.tmp / "out.txt"], [src.name, *fields]

    return Case(name, make, check=_nothing_written)


def _mat(file: str, variables: dict):
    def content(ctx: Ctx) -> Path:
        import scipy.io

        scipy.io.savemat(ctx.tmp / file, variables)
        return ctx.tmp / file

    return content


def _sht(location, number=None):
    rec = np.empty((1, 1), dtype=[("location", "O"), ("number", "O")])
    rec[0, 0]["location"] = location
    rec[0, 0]["number"] = np.array([[len(location) if number is None else number]], dtype=object)
    cell = np.empty((1, 1), dtype=object)
    cell[0, 0] = rec
    return {"image_info": cell}


def _damaged_mat(patch):
    """An uncompressed ``a_ann.mat`` (annPoints 2 x 2 double) with bytes changed by ``patch``.
    Layout after the 128-byte header: matrix tag (128), flags (136: tag, 144: class and flags),
    dimensions (152: tag, 160: rows, 164: columns), name (168), data (192: tag, 200: values)."""
    def content(ctx: Ctx) -> Path:
        import io
        import struct

        import scipy.io

        buf = io.BytesIO()
        scipy.io.savemat(buf, {"annPoints": np.array([[1.5, 2.0], [3, 4]])}, do_compression=False)
        data = bytearray(buf.getvalue())
        patch(data, struct)
        return write_input(ctx.tmp / "a_ann.mat", bytes(data))

    return content


def _cut_compressed(ctx: Ctx) -> Path:
    import io
    import struct

    import scipy.io

    buf = io.BytesIO()
    scipy.io.savemat(buf, {"annPoints": np.arange(200.0).reshape(100, 2)}, do_compression=True)
    data = buf.getvalue()
    size = struct.unpack("<I", data[132:136])[0] - 10  # the stream's end cut, its tag made to fit
    return write_input(ctx.tmp / "a_ann.mat", data[:132] + struct.pack("<I", size) + data[136:136 + size])


DEEP = "[" * 100_000 + "]" * 100_000
HUGE_FIELD = "x,y\n" + "1" * 200_000 + ",2\n"
BOMB = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;'
        '&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><annotations><image name="&lol2;"/></annotations>')
EXTERNAL = ('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            '<annotations><image name="a.jpg"><points points="&x;"/></image></annotations>')

CASES = [
    # COCO: fields of the wrong JSON type
    refused("coco-images-number", "c.json", _changed(COCO, ("images",), 5), "images"),
    refused("coco-annotations-object", "c.json", _changed(COCO, ("annotations",), {"a": 1}), "annotations"),
    refused("coco-image-not-object", "c.json", _changed(COCO, ("images",), [7]), "images[0]"),
    refused("coco-id-list", "c.json", _changed(COCO, ("images", 0, "id"), [1]), "images[0].id"),
    refused("coco-image-id-list", "c.json", _changed(COCO, ("annotations", 0, "image_id"), [1]),
            "annotations[0].image_id"),
    refused("coco-file-name-null", "c.json", _changed(COCO, ("images", 0, "file_name"), None),
            "images[0].file_name"),
    refused("coco-file-name-empty", "c.json", _changed(COCO, ("images", 0, "file_name"), ""),
            "images[0].file_name"),
    refused("coco-width-negative", "c.json", _changed(COCO, ("images", 0, "width"), -64), "width"),
    refused("coco-width-string", "c.json", _changed(COCO, ("images", 0, "width"), "64"), "width"),
    refused("coco-keypoint-string", "c.json", _changed(COCO, ("annotations", 0, "keypoints"), ["10", 12, 2]),
            "annotations[0].keypoints"),
    refused("coco-keypoints-short", "c.json", _changed(COCO, ("annotations", 0, "keypoints"), [10]),
            "annotations[0].keypoints"),
    refused("coco-keypoint-nan", "c.json", '{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": '
            '[{"image_id": 1, "category_id": 1, "keypoints": [NaN, 2, 2]}], "categories": '
            '[{"id": 1, "keypoints": ["head"]}]}', "not a finite"),
    refused("coco-keypoint-huge-integer", "c.json", json.dumps(COCO).replace("[10, 12, 2]", f"[{10 ** 400}, 12, 2]"),
            "not a finite"),
    refused("coco-integer-too-long", "c.json", json.dumps(COCO).replace("[10, 12, 2]", f"[{'9' * 5000}, 12, 2]"),
            "not valid JSON"),
    refused("coco-unknown-image-id", "c.json", _changed(COCO, ("annotations", 0, "image_id"), 9), "image_id"),
    refused("coco-duplicate-image-id", "c.json", _changed(COCO, ("images",), COCO["images"] * 2), "images[1].id"),
    refused("coco-categories-string", "c.json", _changed(COCO, ("categories",), "head"), "categories"),
    refused("coco-deeply-nested", "c.json", '{"images": ' + DEEP + ', "annotations": []}', "nested"),
    # LabelMe
    refused("labelme-shapes-number", "l.json", _changed(LABELME, ("shapes",), 3), "shapes"),
    refused("labelme-shape-string", "l.json", _changed(LABELME, ("shapes",), ["head"]), "shapes[0]"),
    refused("labelme-point-string", "l.json", _changed(LABELME, ("shapes", 0, "points"), [["10", 12]]),
            "shapes[0].points"),
    refused("labelme-point-three-values", "l.json", _changed(LABELME, ("shapes", 0, "points"), [[1, 2, 3]]),
            "shapes[0].points"),
    refused("labelme-label-number", "l.json", _changed(LABELME, ("shapes", 0, "label"), 5), "shapes[0].label"),
    refused("labelme-negative-size", "l.json", _changed(LABELME, ("imageWidth",), -64), "imageWidth"),
    refused("labelme-size-string", "l.json", _changed(LABELME, ("imageHeight",), "48"), "imageHeight"),
    refused("labelme-image-path-number", "l.json", _changed(LABELME, ("imagePath",), 12), "imagePath"),
    refused("labelme-roi-nan", "l.json", json.dumps(_changed(LABELME, ("shapes",), LABELME["shapes"] + [
        {"label": "roi", "shape_type": "polygon", "points": [[0, 0], [1e999, 0], [5, 5]]}])), "not a finite"),
    refused("labelme-deeply-nested", "l.json", '{"shapes": ' + DEEP + '}', "nested"),
    # NWPU
    refused("nwpu-points-string", "n.json", _changed(NWPU, ("points",), "10,12"), "points"),
    refused("nwpu-human-num-string", "n.json", _changed(NWPU, ("human_num",), "1"), "human_num"),
    refused("nwpu-human-num-true", "n.json", _changed(NWPU, ("human_num",), True), "human_num"),
    refused("nwpu-img-id-list", "n.json", _changed(NWPU, ("img_id",), ["a.jpg"]), "img_id"),
    refused("nwpu-box-nan", "n.json", json.dumps(NWPU).replace("[8, 10, 12, 14]", "[8, NaN, 12, 14]"), "boxes[0]"),
    refused("nwpu-deeply-nested", "n.json", '{"img_id": "a.jpg", "points": ' + DEEP + '}', "nested"),
    # VIA
    refused("via-region-string", "v.json", _changed(VIA, ("a.jpg1", "regions"), ["point"]), "regions[0]"),
    refused("via-shape-attributes-missing", "v.json", _changed(VIA, ("a.jpg1", "regions", 0), {"x": 1}),
            "shape_attributes"),
    refused("via-cx-string", "v.json", _changed(VIA, ("a.jpg1", "regions", 0, "shape_attributes", "cx"), "10"),
            "cx"),
    refused("via-point-without-cy", "v.json", _changed(VIA, ("a.jpg1", "regions", 0, "shape_attributes"),
                                                       {"name": "point", "cx": 3}), "cy"),
    refused("via-rect-regions", "v.json", _changed(VIA, ("a.jpg1", "regions", 0, "shape_attributes"),
                                                   {"name": "rect", "x": 1, "y": 1, "width": 4, "height": 4}),
            "rect"),
    refused("via-polygon-lengths-differ", "v.json", _changed(
        VIA, ("a.jpg1", "regions", 0, "shape_attributes"),
        {"name": "polygon", "all_points_x": [0, 5, 9], "all_points_y": [0, 5]}), "all_points"),
    refused("via-roi-infinite", "v.json", json.dumps(_changed(
        VIA, ("a.jpg1", "regions", 0, "shape_attributes"),
        {"name": "polygon", "all_points_x": [0, 5, 9], "all_points_y": [0, 5, 1e999]})), "all_points_y"),
    refused("via-filename-null", "v.json", _changed(VIA, ("a.jpg1", "filename"), None), "filename"),
    # CVAT
    refused("cvat-roi-nan", "c.xml", '<annotations><image name="a.jpg" width="64" height="48"><polygon '
            'label="roi" points="0,0;nan,0;5,5"/></image></annotations>', "not a finite"),
    refused("cvat-negative-size", "c.xml", '<annotations><image name="a.jpg" width="-64" height="48">'
            '</image></annotations>', "not a size"),
    refused("cvat-size-text", "c.xml", '<annotations><image name="a.jpg" width="wide" height="48">'
            '</image></annotations>', "width"),
    refused("cvat-entity-bomb", "c.xml", BOMB, "DOCTYPE"),
    refused("cvat-external-entity", "c.xml", EXTERNAL, "DOCTYPE"),
    refused("cvat-points-text", "c.xml", '<annotations><image name="a.jpg"><points points="a,b"/>'
            '</image></annotations>', "points"),
    # CSV, text, JHU
    refused("csv-field-over-limit", "p.csv", HUGE_FIELD, "CSV"),
    refused("csv-nul-byte", "p.csv", b"x,y\n1,\x002\n", "row 2"),
    refused("csv-nan", "p.csv", "x,y\n1,2\nnan,3\n", "not a finite"),
    refused("text-infinite", "p.txt", "1 2\n1e999 3\n", "line 2"),
    refused("jhu-nan-attribute", "gt/0001.txt", "1 2 3 4 nan 0\n", "line 1", src_format="jhu"),
    # MATLAB files
    refused("ucf-transposed", "a_ann.mat", _mat("a_ann.mat", {"annPoints": np.arange(10.0).reshape(2, 5)}),
            "annPoints", "2 x 5"),
    refused("ucf-complex", "a_ann.mat", _mat("a_ann.mat", {"annPoints": np.ones((3, 2)) * (1 + 2j)}),
            "complex"),
    refused("ucf-text", "a_ann.mat", _mat("a_ann.mat", {"annPoints": np.array(["ab", "cd"])}), "annPoints"),
    refused("ucf-three-columns", "a_ann.mat", _mat("a_ann.mat", {"annPoints": np.ones((4, 3))}), "4 x 3"),
    # damaged MATLAB structure that scipy's compiled reader would crash or hang on
    refused("mat-billions-of-elements", "a_ann.mat",
            _damaged_mat(lambda d, st: d.__setitem__(slice(164, 168), st.pack("<i", 1_000_000_000))),
            "elements"),
    refused("mat-complex-flag-without-imaginary-part", "a_ann.mat",
            _damaged_mat(lambda d, st: d.__setitem__(145, d[145] | 0x08)), "parts"),
    refused("mat-unknown-data-type", "a_ann.mat",
            _damaged_mat(lambda d, st: d.__setitem__(slice(192, 196), st.pack("<I", 254))), "parts"),
    refused("mat-cell-holding-numbers", "a_ann.mat", _damaged_mat(lambda d, st: d.__setitem__(144, 1)),
            "parts"),
    refused("mat-element-longer-than-file", "a_ann.mat",
            _damaged_mat(lambda d, st: d.__setitem__(slice(132, 136), st.pack("<I", 10_000))), "bytes"),
    refused("mat-compressed-stream-cut", "a_ann.mat", _cut_compressed, "compressed"),
    refused("sht-complex", "GT_IMG_1.mat", _mat("GT_IMG_1.mat", _sht(np.ones((3, 2)) * 1j)), "complex"),
    refused("sht-number-fraction", "GT_IMG_1.mat", _mat("GT_IMG_1.mat", _sht(np.ones((3, 2)), 2.5)),
            "image_info.number"),
]


# -- odd but valid: accepted, and read right ----------------------------------------------------------
def accepted(name: str, file: str, content, expect_points, **kw) -> Case:
    def make(ctx: Ctx):
        src = content(ctx) if callable(content) else write_input(ctx.tmp / file, content)
        return ["convert", src, "--to", "csv", "--out", ctx.tmp / "out.csv"], []

    def check(ctx: Ctx, result) -> None:
        from sasnet_core.annotations.formats import read_points

        got = read_points(ctx.tmp / "out.csv", report=[]).points
        assert got.tolist() == expect_points, got.tolist()

    return Case(name, make, expect=ACCEPTED, check=check, **kw)


CASES += [
    accepted("coco-string-ids", "c.json", _changed(_changed(COCO, ("images", 0, "id"), "im1"),
                                                   ("annotations", 0, "image_id"), "im1"), [[10, 12]]),
    accepted("coco-width-float-whole", "c.json", _changed(COCO, ("images", 0, "width"), 64.0), [[10, 12]]),
    accepted("coco-other-category-skipped", "c.json", _changed(COCO, ("annotations",), COCO["annotations"] + [
        {"id": 2, "image_id": 1, "category_id": 7, "bbox": [1, 1, 4, 4]}]), [[10, 12]]),
    accepted("labelme-no-size", "l.json", {"shapes": LABELME["shapes"], "imagePath": "a.jpg"}, [[10, 12]]),
    accepted("via1-regions-as-object", "v.json", _changed(VIA, ("a.jpg1", "regions"),
                                                         {"0": VIA["a.jpg1"]["regions"][0]}), [[10, 12]]),
    accepted("ucf-matlab-noise-cleaned", "a_ann.mat",
             _mat("a_ann.mat", {"annPoints": np.array([[312.9999999999999, 51.999999999999886]])}), [[313, 52]]),
    accepted("ucf-2x2-is-two-points", "a_ann.mat", _mat("a_ann.mat", {"annPoints": np.array([[1.0, 2], [3, 4]])}),
             [[1, 2], [3, 4]]),
    accepted("text-empty-image-without-people", "p.txt", "", []),
    accepted("csv-no-header", "p.csv", "1.5,2\n3,4\n", [[1.5, 2], [3, 4]]),
    accepted("cvat-utf8-bom", "c.xml", "\ufeff<annotations><image name='a.jpg'><points points='1,2'/>"
             "</image></annotations>", [[1, 2]]),
]
