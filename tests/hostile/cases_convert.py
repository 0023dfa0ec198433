"""``sasnet convert`` outputs and options: nothing that exists is replaced without ``--overwrite``,
two images never share a file, images outside the source are not copied into a data set, a full
disk or an impossible path is one line naming the output, and bad option values are usage errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hostile import ACCEPTED, Case, Ctx

MINE = "a file a person made"


def _image(path: Path, w: int = 40, h: int = 30) -> Path:
    from sasnet_core.io.imageio import write_image

    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, np.full((h, w, 3), 90, np.uint8))
    return path


def _annotated(path: Path, n: int = 2) -> Path:
    """An image with a ``.sasnet.json`` of ``n`` points beside it."""
    from sasnet_core.annotations.annotation import Annotation, save_annotation

    _image(path)
    save_annotation(Annotation(str(path), (40, 30), [[5 + i, 6] for i in range(n)]),
                    path.with_name(path.name + ".sasnet.json"))
    return path


def _text(ctx: Ctx) -> Path:
    src = ctx.tmp / "a.txt"
    src.write_text("1 2\n3.5 4\n")
    return src


def _kept(*rel: str):
    def check(ctx: Ctx, result) -> None:
        for r in rel:
            assert (ctx.tmp / r).read_text() == MINE, f"{r} was replaced"

    return check


def onto_existing(fmt: str, out: str, *, folder: bool = False) -> Case:
    """Converting onto an output that exists is refused, naming it, and leaves it as it was."""
    def make(ctx: Ctx):
        dst = ctx.tmp / out
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(MINE)
        if folder:  # a folder of per-image files: the existing one is among the outputs
            _annotated(ctx.tmp / "src" / "a.jpg")
            _annotated(ctx.tmp / "src" / "b.jpg")
            return ["convert", ctx.tmp / "src", "--to", fmt, "--out", dst.parent], [dst.name, "--overwrite"]
        return ["convert", _text(ctx), "--to", fmt, "--out", dst], [dst.name, "--overwrite"]

    return Case(f"existing-{fmt}{'-folder' if folder else ''}", make, check=_kept(out))


def _dataset_twice(ctx: Ctx):
    _annotated(ctx.tmp / "src" / "a.jpg")
    out = ctx.tmp / "export"
    (out / "train_data").mkdir(parents=True)
    (out / "train_data" / "notes.txt").write_text(MINE)
    return ["convert", ctx.tmp / "src", "--to", "shanghaitech-dataset", "--out", out], ["train_data", "--overwrite"]


def _collision(ctx: Ctx):
    _annotated(ctx.tmp / "src" / "IMG_1.jpg", 1)
    _annotated(ctx.tmp / "src" / "IMG_1.png", 2)
    return (["convert", ctx.tmp / "src", "--to", "ucf", "--out", ctx.tmp / "out"],
            ["IMG_1_ann.mat", "IMG_1.jpg", "IMG_1.png"])


def _outside_root(ctx: Ctx):
    _image(ctx.tmp / "outside" / "secret.jpg")
    src = ctx.tmp / "src" / "a.json"
    src.parent.mkdir()
    src.write_text(json.dumps({"shapes": [{"label": "head", "shape_type": "point", "points": [[1, 2]]}],
                               "imagePath": "../outside/secret.jpg"}))
    return ["convert", src.parent, "--to", "shanghaitech-dataset", "--out", ctx.tmp / "export"], ["secret.jpg"]


def _outside_via_coco(ctx: Ctx):
    _image(ctx.tmp / "private" / "p.jpg")
    src = ctx.tmp / "proj" / "c.json"
    src.parent.mkdir()
    src.write_text(json.dumps({"images": [{"id": 1, "file_name": "../private/p.jpg"}], "annotations": [],
                               "categories": [{"id": 1, "keypoints": ["head"]}]}))
    return ["convert", src, "--to", "shanghaitech-dataset", "--out", ctx.tmp / "export"], ["p.jpg"]


def _symlink_out_of_root(ctx: Ctx):
    secret = _image(ctx.tmp / "outside" / "s.jpg")
    (ctx.tmp / "src").mkdir()
    (ctx.tmp / "src" / "link.jpg").symlink_to(secret)
    from sasnet_core.annotations.annotation import Annotation, save_annotation

    save_annotation(Annotation(str(ctx.tmp / "src" / "link.jpg"), (40, 30), [[1, 2]]),
                    ctx.tmp / "src" / "link.jpg.sasnet.json")
    return ["convert", ctx.tmp / "src", "--to", "shanghaitech-dataset", "--out", ctx.tmp / "export"], ["link.jpg"]


def _missing_image(ctx: Ctx):
    src = ctx.tmp / "src" / "a.json"
    src.parent.mkdir()
    src.write_text(json.dumps({"shapes": [], "imagePath": "gone.jpg"}))
    return ["convert", src.parent, "--to", "shanghaitech-dataset", "--out", ctx.tmp / "export"], ["gone.jpg"]


def _nothing_at(rel: str):
    def check(ctx: Ctx, result) -> None:
        assert not (ctx.tmp / rel).exists(), f"{rel} was written"

    return check


def _full_disk(overwrite: bool):
    def make(ctx: Ctx):
        return (["convert", _text(ctx), "--to", "csv", "--out", "/dev/full",
                 *(["--overwrite"] if overwrite else [])], ["/dev/full"])

    return make


def _file_as_folder(ctx: Ctx):
    (ctx.tmp / "blocker").write_text(MINE)
    return ["convert", _text(ctx), "--to", "csv", "--out", ctx.tmp / "blocker" / "out.csv"], ["blocker"]


def _unwritable(ctx: Ctx):
    return ["convert", _text(ctx), "--to", "csv", "--out", "/proc/sasnet-test/out.csv"], ["/proc/sasnet-test"]


def _onto_image(fmt: str, name: str):
    """``--out`` names an image (a slip of the shell's completion): refused even with --overwrite."""
    def make(ctx: Ctx):
        if name.endswith(".mp4"):
            (ctx.tmp / "imgs").mkdir()
            (ctx.tmp / "imgs" / name).write_text(MINE)  # its bytes do not matter: its name does
        else:
            _image(ctx.tmp / "imgs" / name)
        return (["convert", _text(ctx), "--to", fmt, "--out", ctx.tmp / "imgs" / name, "--overwrite"],
                [name, "image"])

    return make


def _image_kept(rel: str):
    def check(ctx: Ctx, result) -> None:
        from sasnet_core.io.imageio import read_image

        assert read_image(ctx.tmp / rel).shape == (30, 40, 3), f"{rel} was replaced"

    return check


def _wrong_extension(fmt: str, name: str, expected: str):
    def make(ctx: Ctx):
        return ["convert", _text(ctx), "--to", fmt, "--out", ctx.tmp / name], [name, expected]

    return make


def _onto_own_annotation(ctx: Ctx):
    """The sasnet format onto the very file the app keeps the image's annotation in."""
    img = _annotated(ctx.tmp / "src" / "a.jpg", 3)
    own = img.with_name("a.jpg.sasnet.json")
    (ctx.tmp / "other").mkdir()
    src = ctx.tmp / "other" / "a.json"
    src.write_text(json.dumps({"shapes": [{"label": "head", "shape_type": "point", "points": [[1, 2]]}],
                               "imagePath": "../src/a.jpg"}))
    return ["convert", src, "--to", "sasnet", "--out", own, "--overwrite"], ["a.jpg.sasnet.json", "annotation file"]


def _check_own_kept(ctx: Ctx, result) -> None:
    from sasnet_core.annotations.formats import read_points

    assert read_points(ctx.tmp / "src" / "a.jpg.sasnet.json").count == 3


def _dataset_into_images(ctx: Ctx):
    _annotated(ctx.tmp / "imgs" / "IMG_1.jpg")
    return (["convert", ctx.tmp / "imgs", "--to", "shanghaitech-dataset", "--out", ctx.tmp / "imgs" / "export"],
            ["export", "read back"])


def _check_images_unchanged(ctx: Ctx, result) -> None:
    from sasnet_core.io.inputs import collect_inputs

    assert not (ctx.tmp / "imgs" / "export").exists()
    assert len(collect_inputs([str(ctx.tmp / "imgs")]).images) == 1


def option(name: str, *args: str) -> Case:
    def make(ctx: Ctx):
        _annotated(ctx.tmp / "src" / "a.jpg")
        return (["convert", ctx.tmp / "src", "--to", "shanghaitech-dataset", "--out", ctx.tmp / "o", *args],
                [args[0]])

    return Case(name, make, check=_nothing_at("o"))


CASES = [
    onto_existing("csv", "out.csv"),
    onto_existing("text", "out.txt"),
    onto_existing("labelme", "out.json"),
    onto_existing("ucf", "a_ann.mat"),
    onto_existing("coco", "all.json"),
    onto_existing("cvat", "all.xml"),
    onto_existing("via", "all.json"),
    onto_existing("text", "folder/a.txt", folder=True),
    onto_existing("shanghaitech", "folder/GT_b.mat", folder=True),
    Case("existing-dataset-folder", _dataset_twice, check=_kept("export/train_data/notes.txt")),
    Case("two-images-one-file", _collision, check=_nothing_at("out")),
    Case("image-outside-source", _outside_root, check=_nothing_at("export")),
    Case("image-outside-source-coco", _outside_via_coco, check=_nothing_at("export")),
    Case("image-symlink-out-of-source", _symlink_out_of_root, check=_nothing_at("export")),
    Case("dataset-image-missing", _missing_image, check=_nothing_at("export")),
    Case("full-disk-exists", _full_disk(False)),
    Case("full-disk-overwrite", _full_disk(True)),
    Case("parent-is-a-file", _file_as_folder, check=_kept("blocker")),
    Case("unwritable-folder", _unwritable),
    Case("onto-jpeg-with-overwrite", _onto_image("nwpu", "IMG_4.jpg"), check=_image_kept("imgs/IMG_4.jpg")),
    Case("onto-png-with-overwrite", _onto_image("csv", "a.png"), check=_image_kept("imgs/a.png")),
    Case("onto-video-with-overwrite", _onto_image("text", "clip.mp4"), check=_kept("imgs/clip.mp4")),
    Case("nwpu-to-xml", _wrong_extension("nwpu", "out.xml", ".json"), check=_nothing_at("out.xml")),
    Case("cvat-to-json", _wrong_extension("cvat", "out.json", ".xml"), check=_nothing_at("out.json")),
    Case("csv-to-txt", _wrong_extension("csv", "out.txt", ".csv"), check=_nothing_at("out.txt")),
    Case("ucf-to-json", _wrong_extension("ucf", "out.json", ".mat"), check=_nothing_at("out.json")),
    Case("sasnet-to-plain-json", _wrong_extension("sasnet", "out.json", ".sasnet.json"), check=_nothing_at("out.json")),
    Case("onto-own-annotation-file", _onto_own_annotation, check=_check_own_kept),
    Case("dataset-inside-images-folder", _dataset_into_images, check=_check_images_unchanged),
    option("test-fraction-7", "--test-fraction", "7"),
    option("test-fraction-0", "--test-fraction", "0"),
    option("test-fraction-negative", "--test-fraction", "-0.2"),
    option("test-fraction-nan", "--test-fraction", "nan"),
    option("seed-negative", "--seed", "-1"),
    option("seed-text", "--seed", "abc"),
    option("to-unknown", "--to", "yolo"),
    option("from-unknown", "--from", "yolo"),
]


# -- accepted, and right ---------------------------------------------------------------------------
def _overwrite_single(ctx: Ctx):
    (ctx.tmp / "out.csv").write_text(MINE)
    return ["convert", _text(ctx), "--to", "csv", "--out", ctx.tmp / "out.csv", "--overwrite"], []


def _check_overwritten(ctx: Ctx, result) -> None:
    from sasnet_core.annotations.formats import read_points

    assert read_points(ctx.tmp / "out.csv").points.tolist() == [[1, 2], [3.5, 4]]


def _same_names(ctx: Ctx):
    for sub, n in (("a", 1), ("b", 2), ("c", 3)):
        _annotated(ctx.tmp / "src" / sub / "img.jpg", n)
    return ["convert", ctx.tmp / "src", "--to", "text", "--out", ctx.tmp / "out"], []


def _check_same_names(ctx: Ctx, result) -> None:
    from sasnet_core.annotations.formats import read_points

    for sub, n in (("a", 1), ("b", 2), ("c", 3)):
        assert read_points(ctx.tmp / "out" / sub / "img.txt").count == n
    assert "3 files" in result.out


def _relative_source(ctx: Ctx):
    _annotated(ctx.tmp / "data" / "a.jpg")
    return ["convert", "data/a.jpg.sasnet.json", "--to", "labelme", "--out", "exports/a.json"], []


def _check_relative(ctx: Ctx, result) -> None:
    data = json.loads((ctx.tmp / "exports" / "a.json").read_text())
    assert data["imagePath"] == "../data/a.jpg" and (data["imageWidth"], data["imageHeight"]) == (40, 30)


def _dataset_overwrite(ctx: Ctx):
    for name in "abc":
        _annotated(ctx.tmp / "src" / f"{name}.jpg")
    out = ctx.tmp / "export" / "test_data" / "images"
    out.mkdir(parents=True)
    for i in range(1, 6):  # an older, larger export
        (out / f"IMG_{i}.jpg").write_text("old")
    return ["convert", ctx.tmp / "src", "--to", "shanghaitech-dataset", "--out", ctx.tmp / "export",
            "--overwrite"], []


def _check_dataset_overwrite(ctx: Ctx, result) -> None:
    images = sorted((ctx.tmp / "export").rglob("IMG_*.jpg"))
    assert len(images) == 3 and all(p.read_bytes() != b"old" for p in images)


def _named_outside(ctx: Ctx):
    argv, _ = _outside_root(ctx)
    return [*argv, "--allow-image", ctx.tmp / "outside" / "secret.jpg"], []


def _check_named_outside(ctx: Ctx, result) -> None:
    assert len(list((ctx.tmp / "export").rglob("IMG_*.jpg"))) == 1


def _export_reads_back(ctx: Ctx):
    from sasnet_core.cli import main

    for sub in ("train", "test"):
        _annotated(ctx.tmp / "src" / sub / "IMG_1.jpg", 2 if sub == "train" else 3)
    assert main(["convert", str(ctx.tmp / "src"), "--to", "text", "--out", str(ctx.tmp / "txt")]) == 0
    return ["convert", ctx.tmp / "txt", "--to", "nwpu", "--out", ctx.tmp / "nwpu"], []


def _check_reads_back(ctx: Ctx, result) -> None:
    from sasnet_core.annotations.formats import read_points

    assert read_points(ctx.tmp / "nwpu" / "train" / "IMG_1.json").count == 2
    assert read_points(ctx.tmp / "nwpu" / "test" / "IMG_1.json").count == 3


CASES += [
    Case("overwrite-when-asked", _overwrite_single, expect=ACCEPTED, check=_check_overwritten),
    Case("same-name-three-folders", _same_names, expect=ACCEPTED, check=_check_same_names),
    Case("relative-source-paths", _relative_source, expect=ACCEPTED, check=_check_relative),
    Case("dataset-overwrite-no-stale-images", _dataset_overwrite, expect=ACCEPTED, check=_check_dataset_overwrite),
    Case("outside-image-named-explicitly", _named_outside, expect=ACCEPTED, check=_check_named_outside),
    Case("per-image-export-reads-back", _export_reads_back, expect=ACCEPTED, check=_check_reads_back),
]


def _gt_beside_images(ctx: Ctx):
    _image(ctx.tmp / "nwpu" / "images" / "0001.jpg")
    gt = ctx.tmp / "nwpu" / "jsons" / "0001.json"
    gt.parent.mkdir(parents=True)
    gt.write_text(json.dumps({"img_id": "0001.jpg", "human_num": 1, "points": [[3, 4]]}))
    return ["convert", gt, "--to", "shanghaitech-dataset", "--out", ctx.tmp / "export"], []


def _check_gt_beside_images(ctx: Ctx, result) -> None:
    (gt,) = (ctx.tmp / "export").rglob("GT_IMG_1.mat")
    from sasnet_core.annotations.formats import read_points

    assert read_points(gt).points.tolist() == [[3, 4]]


CASES += [Case("dataset-from-a-file-with-images-beside", _gt_beside_images, expect=ACCEPTED,
               check=_check_gt_beside_images)]
