"""``sasnet eval`` on a small annotated folder: bad options are usage errors naming the option; an
image that cannot be read is named and left out of the figures (exit 1), never a traceback or a
silent 0; the model defaults to the registry's, as for ``sasnet count``."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hostile import (
    ACCEPTED,
    REFUSED,
    SKIPPED,
    Case,
    Ctx,
    impossible_engine_cases,
    media,
    write_input,
)

HEADS = {"img_1.png": [[3.0, 4.0], [20.0, 10.0]], "img_2.png": [[8.0, 8.0]], "img_10.png": []}


def _annotated(ctx: Ctx) -> Path:
    """Three images with annotation files beside them: 2, 1 and 0 heads."""
    from sasnet_core.annotations.annotation import Annotation, save_annotation

    root = ctx.tmp / "set"
    for i, (name, heads) in enumerate(HEADS.items()):
        write_input(root / name, media.encoded(media.rgb(48, 64, seed=i), "PNG"))
        save_annotation(Annotation(str(root / name), (64, 48), np.array(heads).reshape(-1, 2)),
                        root / f"{name}.sasnet.json")
    return root


def _eval(ctx: Ctx, root, *args) -> list:
    return ["eval", root, "--weights", ctx.weights, "--device", "cpu", *args]


def bad_option(option: str, value: str | None = None) -> Case:
    def make(ctx: Ctx):
        arg = value if value is not None else ctx.tmp
        names = [option, value if value is not None else "is a folder"]
        return _eval(ctx, _annotated(ctx), option, arg), names

    return Case(f"{option[2:]}={value if value is not None else 'a-folder'}", make, REFUSED)


def _report(result) -> dict:
    def no_constants(token):
        raise AssertionError(f"{token} in the JSON output")

    return json.loads(result.out, parse_constant=no_constants)


def damaged_image(name: str, data, *words: str) -> Case:
    """img_2.png replaced by ``data``: named, left out, the other two evaluated."""
    def make(ctx: Ctx):
        root = _annotated(ctx)
        (root / "img_2.png").write_bytes(data)
        return _eval(ctx, root, "--json"), ["img_2.png", *words]

    def check(ctx: Ctx, result) -> None:
        report = _report(result)
        assert report["summary"]["images"] == 2
        assert [r["gt_count"] for r in report["images"]] == [2, 0]
        (skipped,) = report["skipped"]
        assert skipped["image"].endswith("img_2.png") and skipped["skipped"] is True

    return Case(name, make, SKIPPED, check)


def _dataset_is(kind: str):
    def make(ctx: Ctx):
        path = ctx.tmp / "data"
        if kind == "file":
            write_input(path, "x")
        elif kind == "empty":
            path.mkdir()
        return _eval(ctx, path), ["data"]

    return make


def _no_model_anywhere(ctx: Ctx):
    return ["eval", _annotated(ctx), "--device", "cpu"], ["sasnet models add"]


def _default_model(ctx: Ctx):
    from sasnet_core.weights.registry import ModelRegistry

    ModelRegistry().add("tiny", ctx.weights, make_default=True)
    return ["eval", _annotated(ctx), "--device", "cpu", "--json"], []


def _all_three(ctx: Ctx, result) -> None:
    report = _report(result)
    assert [Path(r["image"]).name for r in report["images"]] == list(HEADS)
    assert [r["gt_count"] for r in report["images"]] == [2, 1, 0] and report["skipped"] == []


def _limit_one(ctx: Ctx):
    return _eval(ctx, _annotated(ctx), "--json", "--limit", "1"), []


def _one_row(ctx: Ctx, result) -> None:
    assert [Path(r["image"]).name for r in _report(result)["images"]] == ["img_1.png"]


def _csv_in_new_folder(ctx: Ctx):
    return _eval(ctx, _annotated(ctx), "--csv", ctx.tmp / "new" / "rows.csv"), []


def _csv_written(ctx: Ctx, result) -> None:
    import csv

    with open(ctx.tmp / "new" / "rows.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [Path(r["image"]).name for r in rows] == list(HEADS)


CASES = [
    bad_option("--limit", "-1"), bad_option("--limit", "0"), bad_option("--limit", "ten"),
    bad_option("--fold", "9"), bad_option("--fold", "0"), bad_option("--fold", "two"),
    bad_option("--csv"), bad_option("--device", "banana"), bad_option("--max-side", "10"),
    bad_option("--precision", "fp8"), bad_option("--backend", "tensorrt"),
    *impossible_engine_cases(lambda ctx, *options: _eval(ctx, _annotated(ctx), *options)),
    Case("split=banana", lambda ctx: (_eval(ctx, _annotated(ctx), "--split", "banana"), ["set", "no split 'banana'"]),
         REFUSED),
    Case("layout=banana", lambda ctx: (_eval(ctx, _annotated(ctx), "--layout", "banana"), ["set", "unknown layout 'banana'"]),
         REFUSED),
    damaged_image("damaged-png", b"\x89PNG\r\n\x1a\n damaged", "not a readable image"),
    damaged_image("zero-byte-image", b"", "empty"),
    damaged_image("image-bomb", media.png_declaring(30000, 30000), "900 megapixels"),
    damaged_image("text-named-png", b"not an image\n", "not a readable image"),
    Case("dataset-is-a-file", _dataset_is("file"), REFUSED),
    Case("dataset-is-missing", _dataset_is("missing"), REFUSED),
    Case("dataset-is-an-empty-folder", _dataset_is("empty"), REFUSED),
    Case("no-model-given-or-registered", _no_model_anywhere, REFUSED),
    Case("default-model-from-the-registry", _default_model, ACCEPTED, _all_three),
    Case("limit-one", _limit_one, ACCEPTED, _one_row),
    Case("csv-into-a-new-folder", _csv_in_new_folder, ACCEPTED, _csv_written),
]
