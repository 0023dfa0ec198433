"""Malformed and odd ``.sasnet.json`` files through the commands that read our annotations:
``sasnet convert FILE --to text`` (one file) and ``sasnet eval FOLDER`` (a data set of images with
their annotations, found by the annotation store)."""
from __future__ import annotations

import json
from pathlib import Path

from hostile import ACCEPTED, REFUSED, Case, Ctx, write_input

FIELDS = {"format": "sasnet-annotation", "version": 1, "image": "a.jpg", "image_size": [64, 48],
          "reviewed": True, "points": [[10.5, 12.0], [30, 20]], "sources": [0, 1],
          "rois": [[[0, 0], [63, 0], [63, 47], [0, 47]]]}


def _doc(**changes) -> dict:
    data = json.loads(json.dumps(FIELDS))
    for key, value in changes.items():
        if value is _DROP:
            data.pop(key, None)
        else:
            data[key] = value
    return data


_DROP = object()


def _image(path: Path, w: int = 64, h: int = 48) -> Path:
    import numpy as np

    from sasnet_core.io.imageio import write_image

    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8))
    return path


# -- refusals through `sasnet convert` ---------------------------------------------------------------
def _convert(content, *fields: str):
    """A case: ``a.jpg.sasnet.json`` holding ``content`` must be refused, naming it (and a field)."""
    def make(ctx: Ctx):
        src = write_input(ctx.tmp / "a.jpg.sasnet.json", content)
        return ["convert", src, "--to", "text", "--out", ctx.tmp / "out.txt"], [src.name, *fields]

    return make


def _nothing_written(ctx: Ctx, result) -> None:
    assert not (ctx.tmp / "out.txt").exists(), "a refused input still produced an output"


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


BAD_FILES = [
    ("not-json", "{ this is not json", ["not valid JSON"]),
    ("truncated", json.dumps(FIELDS)[:-20], ["not valid JSON"]),
    ("empty", "", ["empty"]),
    ("only-whitespace", " \n\t\n", ["empty"]),
    ("binary-garbage", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x80" * 20, ["UTF-8"]),
    ("utf16-text", json.dumps(FIELDS).encode("utf-16"), ["UTF-8"]),
    ("top-level-list", [FIELDS], ["JSON object"]),
    ("top-level-string", '"sasnet-annotation"', ["JSON object"]),
    ("top-level-null", "null", ["JSON object"]),
    ("nested-100k", _nested(100_000), ["too deeply"]),
    ("nested-in-unknown-key", json.dumps(_doc(notes=json.loads(_nested(200)))), ["'notes"]),
    ("nan-in-unknown-key", '{"format": "sasnet-annotation", "version": 1, "image": "a.jpg", '
                           '"notes": {"score": NaN}}', ["'notes'", "nan"]),
    ("format-missing", _doc(format=_DROP), ["'format"]),
    ("format-other-tool", _doc(format="labelme"), ["'format"]),
    ("version-string", _doc(version="1"), ["'version"]),
    ("version-bool", _doc(version=True), ["'version"]),
    ("version-zero", _doc(version=0), ["'version"]),
    ("version-future", _doc(version=99), ["'version"]),
    ("image-missing", _doc(image=_DROP), ["'image"]),
    ("image-number", _doc(image=42), ["'image"]),
    ("image-blank", _doc(image="   "), ["'image"]),
    ("image-nul", _doc(image="a\u0000.jpg"), ["'image"]),
    ("size-negative", _doc(image_size=[-64, 48]), ["image_size"]),
    ("size-zero", _doc(image_size=[64, 0]), ["image_size"]),
    ("size-absurd", _doc(image_size=[10**12, 48]), ["image_size"]),
    ("size-strings", _doc(image_size=["64", "48"]), ["image_size"]),
    ("size-floats", _doc(image_size=[64.5, 48]), ["image_size"]),
    ("size-three", _doc(image_size=[64, 48, 3]), ["image_size"]),
    ("points-strings", _doc(points=[["10", "12"], ["30", "20"]]), ["'points[0]'"]),
    ("points-one-string", _doc(points=[[10, 12], [30, "20"]]), ["'points[1]'"]),
    ("points-nan", '{"format": "sasnet-annotation", "version": 1, "image": "a.jpg", '
                   '"points": [[1, 2], [NaN, 3]]}', ["'points[1]'"]),
    ("points-infinity", '{"format": "sasnet-annotation", "version": 1, "image": "a.jpg", '
                        '"points": [[1, -Infinity]]}', ["'points"]),
    ("points-overflowing-float", '{"format": "sasnet-annotation", "version": 1, "image": "a.jpg", '
                                 '"points": [[1e999, 2]]}', ["'points"]),
    ("points-400-digit-int", '{"format": "sasnet-annotation", "version": 1, "image": "a.jpg", '
                             '"points": [[1, 2], [' + "9" * 400 + ', 2]]}', ["'points[1]'"]),
    ("points-absurd", _doc(points=[[1e300, 2], [3, 4]], sources=_DROP), ["'points[0]'"]),
    ("points-booleans", _doc(points=[[True, False], [1, 2]]), ["'points[0]'"]),
    ("points-object", _doc(points={"x": 1, "y": 2}), ["'points"]),
    ("points-number", _doc(points=7), ["'points"]),
    ("points-flat", _doc(points=[10.5, 12.0, 30, 20]), ["'points"]),
    ("points-triples", _doc(points=[[1, 2, 3], [4, 5, 6]]), ["'points"]),
    ("points-empty-pair", _doc(points=[[]], sources=_DROP), ["'points"]),
    ("points-null", _doc(points=[None, [1, 2]]), ["'points"]),
    ("sources-short", _doc(sources=[0]), ["'sources"]),
    ("sources-unknown", _doc(sources=[0, 7]), ["'sources"]),
    ("sources-nested", _doc(sources=[[0], [1, 1]]), ["'sources"]),
    ("sources-bools", _doc(sources=[True, False]), ["'sources"]),
    ("rois-object", _doc(rois={"0": []}), ["'rois"]),
    ("roi-nan-vertex", '{"format": "sasnet-annotation", "version": 1, "image": "a.jpg", '
                       '"rois": [[[0, 0], [10, NaN], [10, 10]]]}', ["'rois[0]"]),
    ("roi-two-vertices", _doc(rois=[[[0, 0], [5, 5]]]), ["'rois[0]"]),
    ("roi-string-vertex", _doc(rois=[[[0, 0], [5, 5], ["5", "0"]]]), ["'rois[0]"]),
    ("roi-flat", _doc(rois=[[0, 0, 5, 5, 5, 0]]), ["'rois[0]"]),
    ("reviewed-string", _doc(reviewed="yes"), ["'reviewed"]),
    ("reviewed-number", _doc(reviewed=1), ["'reviewed"]),
    ("reviewed-cells-list", _doc(version=2, reviewed_cells=[[0, 1]]), ["'reviewed_cells"]),
    ("reviewed-cells-no-size", _doc(version=2, reviewed_cells={"cells": [[0, 1]]}), ["'reviewed_cells.cell"]),
    ("reviewed-cells-zero-size", _doc(version=2, reviewed_cells={"cell": 0, "cells": []}),
     ["'reviewed_cells.cell"]),
    ("reviewed-cells-negative", _doc(version=2, reviewed_cells={"cell": 128, "cells": [[0, 1], [-1, 2]]}),
     ["'reviewed_cells.cells[1]"]),
    ("reviewed-cells-floats", _doc(version=2, reviewed_cells={"cell": 128, "cells": [[0.5, 1]]}),
     ["'reviewed_cells.cells[0]"]),
    ("reviewed-cells-triple", _doc(version=2, reviewed_cells={"cell": 128, "cells": [[0, 1, 2]]}),
     ["'reviewed_cells.cells[0]"]),
]

CASES = [Case(f"convert-{name}", _convert(content, *fields), REFUSED, _nothing_written,
              tags=("annotation",))
         for name, content, fields in BAD_FILES]


# -- refusals through `sasnet eval`: a data set folder with a damaged annotation ----------------------
def _eval_refused(content, *fields: str, where: str = "a.jpg.sasnet.json"):
    def make(ctx: Ctx):
        root = ctx.tmp / "set"
        _image(root / "a.jpg")
        _image(root / "b.jpg")
        write_input(root / "b.jpg.sasnet.json", _doc(image="b.jpg"))
        bad = root / where
        if content is None:
            bad.mkdir(parents=True)
        else:
            write_input(bad, content)
        return ["eval", root, "--weights", ctx.weights], [bad.name, *fields]

    return make


CASES += [
    Case("eval-not-json", _eval_refused("{ nope", "not valid JSON")),
    Case("eval-points-strings", _eval_refused(_doc(points=[["1", "2"], ["3", "4"]]), "'points")),
    Case("eval-roi-infinite", _eval_refused(
        '{"format": "sasnet-annotation", "version": 1, "image": "a.jpg", '
        '"rois": [[[0, 0], [10, Infinity], [10, 10]]]}', "'rois[0]")),
    Case("eval-nested", _eval_refused(_nested(50_000), "too deeply")),
    Case("eval-binary", _eval_refused(bytes(range(256)) * 4, "UTF-8")),
    Case("eval-folder-named-like-an-annotation", _eval_refused(None, "folder")),
    Case("eval-project-file-damaged", _eval_refused(_doc(image_size=[-1, -1]), "image_size",
                                                    where="annotations/a.jpg.sasnet.json")),
    Case("eval-annotation-names-a-missing-image", _eval_refused(
        _doc(image="../elsewhere/gone.jpg"), "'image", where="labels/gone.jpg.sasnet.json")),
]


# -- valid but odd files: accepted, with the right points ----------------------------------------------
def _convert_accepted(content, expected_lines: list[str], image: str = "a.jpg"):
    def make(ctx: Ctx):
        src = write_input(ctx.tmp / f"{image}.sasnet.json", content)
        return ["convert", src, "--to", "text", "--out", ctx.tmp / "out.txt"], []

    def check(ctx: Ctx, result) -> None:
        lines = (ctx.tmp / "out.txt").read_text(encoding="utf-8").split()
        assert lines == " ".join(expected_lines).split(), lines

    return make, check


def _accepted(name, content, expected, image="a.jpg"):
    make, check = _convert_accepted(content, expected, image)
    return Case(f"convert-accepts-{name}", make, ACCEPTED, check, tags=("annotation",))


CASES += [
    _accepted("utf8-bom", b"\xef\xbb\xbf" + json.dumps(_doc()).encode(), ["10.5 12", "30 20"]),
    _accepted("minimal-old-file", '{"format": "sasnet-annotation", "version": 1, "image": "a.jpg", '
                                  '"points": [[1, 2]]}', ["1 2"]),
    _accepted("unknown-keys", _doc(made_by={"tool": "future", "levels": [[1, [2, [3]]]]}, split="test"),
              ["10.5 12", "30 20"]),
    _accepted("integer-and-off-image-points", _doc(points=[[-0.5, 0], [64, 48]]), ["-0.5 0", "64 48"]),
    _accepted("decimal-digits", _doc(points=[[0.1, 0.2], [2.675, 1234.5]]), ["0.1 0.2", "2.675 1234.5"]),
    _accepted("non-ascii-image-name", _doc(image="Ürün 1 – ☃.jpg", points=[[3, 4]], sources=_DROP),
              ["3 4"], image="Ürün 1 – ☃.jpg"),
    _accepted("null-image-size", _doc(image_size=None), ["10.5 12", "30 20"]),
    _accepted("reviewed-cells", _doc(version=2, reviewed_cells={"cell": 128, "cells": [[0, 0], [2, 1]]}),
              ["10.5 12", "30 20"]),
]


def _eval_json_counts(ctx: Ctx, result) -> dict:
    data = json.loads(result.out)
    rows = data.get("rows") or data.get("images") or []
    return {Path(r["image"]).name: r["gt_count"] for r in rows}


def _same_stem_project(ctx: Ctx):
    """A data set whose annotations live in its annotations/ folder: a.jpg and a.png, same stem."""
    root = ctx.tmp / "set"
    _image(root / "a.jpg")
    _image(root / "a.png")
    write_input(root / "annotations" / "a.jpg.sasnet.json", _doc(image="../a.jpg", points=[[1, 1]],
                                                           sources=_DROP, rois=_DROP))
    write_input(root / "annotations" / "a.png.sasnet.json", _doc(image="../a.png", points=[[1, 1], [2, 2], [3, 3]],
                                                           sources=_DROP, rois=_DROP))
    return ["eval", root, "--weights", ctx.weights, "--json"], []


def _same_stem_counts(ctx: Ctx, result) -> None:
    assert _eval_json_counts(ctx, result) == {"a.jpg": 1, "a.png": 3}, result.out[-2000:]


def _roi_and_old_stem_file(ctx: Ctx):
    """ROI limits the true count; an old stem-keyed file counts for the image it names only."""
    root = ctx.tmp / "set"
    _image(root / "a.jpg")
    _image(root / "a.png")
    write_input(root / "a.jpg.sasnet.json", _doc(points=[[5, 5], [50, 40]], sources=_DROP,
                                            rois=[[[0, 0], [20, 0], [20, 20], [0, 20]]]))
    write_input(root / "annotations" / "a.sasnet.json", _doc(image="../a.png", points=[[1, 1], [2, 2]],
                                                       sources=_DROP, rois=_DROP))
    return ["eval", root, "--weights", ctx.weights, "--json"], []


def _roi_counts(ctx: Ctx, result) -> None:
    assert _eval_json_counts(ctx, result) == {"a.jpg": 1, "a.png": 2}, result.out[-2000:]


CASES += [
    Case("eval-same-stem-in-a-project-folder", _same_stem_project, ACCEPTED, _same_stem_counts),
    Case("eval-roi-and-old-stem-keyed-file", _roi_and_old_stem_file, ACCEPTED, _roi_counts),
]
