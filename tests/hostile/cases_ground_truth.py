"""A data set's ground truth as ``eval`` and ``rank`` find it (the one owner the app uses too,
``sasnet_core.datasets.ground_truth``): a damaged ground-truth file is named, never a traceback
or a silent count of 0; a layout folder with missing files names them; points off the image or
made on another image's size are named and kept; a person's correction counts unless
--original-ground-truth is asked for; nothing in the data set's folder is written."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from _dataset_layouts import fingerprint, make_layout

from hostile import ACCEPTED, REFUSED, SKIPPED, Case, Ctx, write_input

DAMAGED_MAT = b"MATLAB 5.0 MAT-file, damaged" + b"\0" * 100


def _eval(ctx: Ctx, root, *args) -> list:
    return ["eval", root, "--weights", ctx.weights, "--device", "cpu", "--json", "--no-progress", *args]


def _rank(ctx: Ctx, *paths) -> list:
    return ["rank", *paths, "--weights", ctx.weights, "--no-progress", "--json"]


def _qnrf(ctx: Ctx) -> Path:
    root = ctx.tmp / "qnrf"
    make_layout("ucf_qnrf", root)
    return root


def _damaged_mat_eval(ctx: Ctx):
    root = _qnrf(ctx)
    write_input(root / "Train" / "img_0002_ann.mat", DAMAGED_MAT)
    return _eval(ctx, root), ["img_0002_ann.mat"]


def _damaged_mat_rank(ctx: Ctx):
    root = _qnrf(ctx)
    write_input(root / "Train" / "img_0002_ann.mat", DAMAGED_MAT)
    ctx.before = fingerprint(root)
    return _rank(ctx, root / "Train"), ["img_0002_ann.mat", "ground truth was not used"]


def _rank_rows(result) -> dict[str, dict]:
    rows = [json.loads(line) for line in result.out.splitlines() if line.strip()]
    return {Path(r["path"]).name: r for r in rows}


def _other_ranked_with_its_truth(ctx: Ctx, result) -> None:
    rows = _rank_rows(result)
    assert rows["img_0001.jpg"]["annotated_count"] == 6  # the sound file beside it still counts
    assert fingerprint(ctx.tmp / "qnrf") == ctx.before  # the damaged file is left as it was


def _missing_gt(ctx: Ctx):
    from sasnet_core.io.imageio import write_image

    root = ctx.tmp / "sha"
    for i in (1, 2, 3):
        write_image(root / "test_data" / "images" / f"IMG_{i}.jpg", np.full((48, 64, 3), 90, np.uint8))
    from sasnet_core.annotations.annotation import Annotation
    from sasnet_core.annotations.formats import write_annotations

    write_annotations([Annotation(str(root / "test_data/images/IMG_1.jpg"), (64, 48), [[3, 4]])],
                      root / "test_data" / "ground-truth" / "GT_IMG_1.mat", "shanghaitech")
    return _eval(ctx, root), ["GT_IMG_2.mat", "GT_IMG_3.mat", "2 image(s) without ground truth"]


def _off_the_image(ctx: Ctx):
    from sasnet_core.annotations.annotation import Annotation
    from sasnet_core.annotations.formats import write_annotations

    root = ctx.tmp / "labelme"
    make_layout("labelme", root)
    # Made on a 640 x 480 image: two of its points lie off this 64 x 48 one.
    write_annotations([Annotation(str(root / "photo_1.jpg"), (640, 480), [[5, 5], [300, 200], [600, 400]])],
                      root / "photo_1.json", "labelme")
    return _eval(ctx, root), ["photo_1.json", "outside"]


def _off_kept(ctx: Ctx, result) -> None:
    gt = {Path(r["image"]).name: r["gt_count"] for r in json.loads(result.out)["images"]}
    assert gt == {"photo_1.jpg": 3, "photo_2.jpg": 7}  # kept: the published count stays
    assert "photo_1.json" in result.err and "outside" in result.err  # and said


def _corrected(ctx: Ctx, *extra):
    from sasnet_core.annotations.annotation import Annotation, save_annotation

    root = _qnrf(ctx)
    image = root / "Train" / "img_0001.jpg"
    save_annotation(Annotation(str(image), (64, 48), [[3, 4], [10, 10]]), root / "Train" / "img_0001.jpg.sasnet.json")
    return _eval(ctx, root, "--split", "train", *extra), []


def _gt_counts(result) -> dict[str, int]:
    return {Path(r["image"]).name: r["gt_count"] for r in json.loads(result.out)["images"]}


def _correction_counts(ctx: Ctx, result) -> None:
    assert _gt_counts(result) == {"img_0001.jpg": 2, "img_0002.jpg": 1}
    assert "1 image(s) with the corrections saved in SASNet Studio" in result.err


def _original_counts(ctx: Ctx, result) -> None:
    assert _gt_counts(result) == {"img_0001.jpg": 6, "img_0002.jpg": 1}


def _damaged_correction(ctx: Ctx):
    root = _qnrf(ctx)
    write_input(root / "Train" / "img_0001.jpg.sasnet.json", "{not json")
    return _eval(ctx, root, "--split", "train"), ["img_0001.jpg.sasnet.json", "the data set's file counts"]


def _falls_back_to_the_file(ctx: Ctx, result) -> None:
    assert _gt_counts(result) == {"img_0001.jpg": 6, "img_0002.jpg": 1}
    assert "img_0001.jpg.sasnet.json" in result.err and "the data set's file counts" in result.err


def _coco_rank(ctx: Ctx):
    root = ctx.tmp / "coco"
    make_layout("coco", root)
    ctx.before = fingerprint(root)
    return _rank(ctx, root), []


def _coco_counts(ctx: Ctx, result) -> None:
    rows = _rank_rows(result)
    assert {k: r["annotated_count"] for k, r in rows.items()} == {"frame_1.jpg": 3, "frame_2.jpg": 8, "frame_3.jpg": 0}
    assert fingerprint(ctx.tmp / "coco") == ctx.before


def _collection_for_other_images(ctx: Ctx):
    """A COCO file beside the images that names none of them: not their ground truth."""
    from sasnet_core.annotations.annotation import Annotation
    from sasnet_core.annotations.formats import write_annotations

    root = ctx.tmp / "set"
    make_layout("labelme", root)
    for f in root.glob("*.json"):
        f.unlink()
    write_annotations([Annotation(str(ctx.tmp / "elsewhere" / "x.jpg"), (64, 48), [[1, 1]])],
                      root / "annotations.json", "coco")
    return _rank(ctx, root), []


def _damaged_coco(ctx: Ctx):
    """A COCO file beside the images with a point written as text: named, not read as no heads."""
    root = ctx.tmp / "coco"
    make_layout("coco", root)
    data = json.loads((root / "annotations.json").read_text())
    data["annotations"][0]["keypoints"][0] = "12"
    write_input(root / "annotations.json", json.dumps(data))
    return _eval(ctx, root), ["annotations.json", "keypoints"]


def _no_counts(ctx: Ctx, result) -> None:
    assert all(r["annotated_count"] is None for r in _rank_rows(result).values())


# -- a person's correction that does not fit its image: set aside, the data set's points count ------
def _misfit_correction(kind: str):
    """``img_0001.jpg`` (64 x 48, 6 heads in the data set) with a saved correction that belongs
    elsewhere: ``annotation_store.fit_problems`` finds it, as it does for ``rank`` and imports."""
    def build(ctx: Ctx) -> Path:
        from sasnet_core.annotations.annotation import Annotation, save_annotation

        root = _qnrf(ctx)
        image, other = root / "Train" / "img_0001.jpg", root / "Train" / "img_0002.jpg"
        ann = {"another-images-file": Annotation(str(other), (64, 48), [[3, 4], [10, 10]]),
               "made-on-5000x4000": Annotation(str(image), (5000, 4000), [[3, 4], [10, 10]]),
               "points-far-off": Annotation(str(image), (64, 48), [[3, 4], [900, 4000]])}[kind]
        save_annotation(ann, root / "Train" / "img_0001.jpg.sasnet.json")
        ctx.before = fingerprint(root)
        return root
    return build


_CORRECTION_MISFITS = {"another-images-file": "annotation of img_0002.jpg",
                       "made-on-5000x4000": "5000x4000", "points-far-off": "1 of 2 points lie outside"}


def _said_once(ctx: Ctx, result, words: str) -> None:
    lines = [line for line in result.err.splitlines() if "img_0001.jpg.sasnet.json" in line]
    assert len(lines) == 1, result.err  # one line naming the file and what does not fit it
    assert words in lines[0] and "the data set's file counts" in lines[0], result.err
    assert "image(s) with the corrections saved" not in result.err, result.err  # none was used
    assert fingerprint(ctx.tmp / "qnrf") == ctx.before


def _eval_misfit_correction(kind: str) -> Case:
    def check(ctx: Ctx, result) -> None:
        assert _gt_counts(result) == {"img_0001.jpg": 6, "img_0002.jpg": 1}  # the data set's points
        _said_once(ctx, result, _CORRECTION_MISFITS[kind])

    return Case(f"eval-correction-{kind}", lambda ctx: (_eval(ctx, _misfit_correction(kind)(ctx), "--split", "train"),
                                                        []), ACCEPTED, check)


def _train_misfit_correction(ctx: Ctx):
    from hostile.cases_checkpoints import TINY

    root = _misfit_correction("made-on-5000x4000")(ctx)
    return ["train", root, "--out", ctx.tmp / "run", *TINY, "--steps", "1", "--no-progress"], []


# -- a data set's own ground truth that does not fit its image: ranked with its points, and flagged --
def _rank_labelme_misfit(ctx: Ctx):
    _off_the_image(ctx)  # photo_1.json: made on 640 x 480, 2 of its 3 points off this 64 x 48 image
    ctx.before = fingerprint(ctx.tmp / "labelme")
    return _rank(ctx, ctx.tmp / "labelme"), ["photo_1.json", "640x480", "2 of 3 points lie outside"]


def _flagged_and_counted(ctx: Ctx, result) -> None:
    rows = _rank_rows(result)
    assert rows["photo_1.jpg"]["annotated_count"] == 3 and "photo_1.json" in rows["photo_1.jpg"]["error"]
    assert rows["photo_2.jpg"]["annotated_count"] == 7 and "error" not in rows["photo_2.jpg"]
    assert fingerprint(ctx.tmp / "labelme") == ctx.before


def _rank_mat_off_the_image(ctx: Ctx):
    from sasnet_core.annotations.annotation import Annotation
    from sasnet_core.annotations.formats import write_annotations

    root = _qnrf(ctx)
    image = root / "Train" / "img_0002.jpg"
    write_annotations([Annotation(str(image), None, [[5, 5], [700, 9000]])], root / "Train" / "img_0002_ann.mat", "ucf")
    return _rank(ctx, root / "Train"), ["img_0002_ann.mat", "1 of 2 points lie outside"]


def _mat_flagged(ctx: Ctx, result) -> None:
    rows = _rank_rows(result)
    assert rows["img_0002.jpg"]["annotated_count"] == 2 and "img_0002_ann.mat" in rows["img_0002.jpg"]["error"]
    assert rows["img_0001.jpg"]["annotated_count"] == 6 and "error" not in rows["img_0001.jpg"]


CASES = [
    *(_eval_misfit_correction(kind) for kind in _CORRECTION_MISFITS),
    Case("train-correction-made-on-5000x4000", _train_misfit_correction, ACCEPTED,
         lambda ctx, result: _said_once(ctx, result, "5000x4000"), timeout=240),
    Case("rank-gt-made-on-another-size-and-off-the-image", _rank_labelme_misfit, SKIPPED, _flagged_and_counted,
         timeout=240),
    Case("rank-gt-mat-points-off-the-image", _rank_mat_off_the_image, SKIPPED, _mat_flagged, timeout=240),
    Case("damaged-mat-beside-images-eval", _damaged_mat_eval, REFUSED),
    Case("damaged-mat-beside-images-rank", _damaged_mat_rank, SKIPPED, _other_ranked_with_its_truth),
    Case("shanghaitech-layout-missing-gt-files", _missing_gt, REFUSED),
    Case("gt-points-off-the-image-and-another-size", _off_the_image, ACCEPTED, _off_kept),
    Case("a-correction-counts-in-eval", lambda ctx: _corrected(ctx), ACCEPTED, _correction_counts),
    Case("original-ground-truth-ignores-corrections", lambda ctx: _corrected(ctx, "--original-ground-truth"),
         ACCEPTED, _original_counts),
    Case("damaged-correction-falls-back-to-the-data-set", _damaged_correction, ACCEPTED, _falls_back_to_the_file),
    Case("coco-beside-images-rank", _coco_rank, ACCEPTED, _coco_counts),
    Case("damaged-coco-beside-images-eval", _damaged_coco, REFUSED),
    Case("coco-naming-other-images-is-not-their-truth", _collection_for_other_images, ACCEPTED, _no_counts),
]
