"""``sasnet finetune`` given bad options, data it cannot learn from, weights that are not a model
and outputs it must not write: each refused with exit 2 and a message naming the option or file."""
from __future__ import annotations

import json
from pathlib import Path

from hostile import ACCEPTED, Case, Ctx

# A tiny schedule on 64 x 64 images, so the one run that must be accepted takes seconds.
FAST = ["--images-per-step", "2", "--crops", "1", "--crop-size", "32", "--workers", "0",
        "--no-progress", "--device", "cpu"]


def _images(folder: Path, n: int = 2, reviewed=True) -> list[Path]:
    from sasnet_core.training.synthetic import make_blob_dataset

    return make_blob_dataset(folder, n_images=n, size=(64, 64), max_heads=6,
                             layout="annotations", reviewed=reviewed)


def _argv(ctx: Ctx, data, *more, out=None) -> list:
    return ["finetune", ctx.weights, data, "--out", out or ctx.tmp / "new.pth", *FAST, *more]


def _bad_option(option: str, value: str) -> Case:
    def make(ctx: Ctx):
        return _argv(ctx, _images_folder(ctx), option, value), [option]

    return Case(f"option{option}={value}", make)


def _images_folder(ctx: Ctx) -> Path:
    folder = ctx.tmp / "street"
    if not folder.exists():
        _images(folder)
    return folder


def _none_reviewed(ctx: Ctx):
    folder = ctx.tmp / "todo"
    _images(folder, reviewed=False)
    return _argv(ctx, folder), ["todo", "reviewed"]


def _reviewed_cells_off_the_image(ctx: Ctx):
    from sasnet_core.annotations.annotation import load_annotation, save_annotation

    folder = ctx.tmp / "cells"
    image = _images(folder, n=1, reviewed=False)[0]
    file = next(folder.glob("*.sasnet.json"))
    ann = load_annotation(file)
    ann.reviewed_cells = {(3, 3)}  # a cell of a larger image: nothing of this 64 x 64 one
    save_annotation(ann, file)
    return _argv(ctx, folder), [image.name, "outside"]


def _no_images(ctx: Ctx):
    folder = ctx.tmp / "empty"
    folder.mkdir()
    (folder / "notes.txt").write_text("nothing to learn from")
    return _argv(ctx, folder), ["empty"]


def _missing_data(ctx: Ctx):
    return _argv(ctx, ctx.tmp / "nowhere"), ["nowhere"]


def _damaged_annotation(ctx: Ctx):
    folder = _images_folder(ctx)
    bad = sorted(folder.glob("*.sasnet.json"))[0]
    bad.write_text('{"format": "sasnet-annotation", "version": 1, "points": [[1, 2], ', "utf-8")
    return _argv(ctx, folder), [bad.name]


def _annotation_without_image(ctx: Ctx):
    folder = _images_folder(ctx)
    image = sorted(folder.glob("*.png"))[0]
    image.unlink()  # its annotation stays behind
    return _argv(ctx, folder), [image.name]


def _weights_not_a_checkpoint(ctx: Ctx):
    weights = ctx.tmp / "notes.pth"
    weights.write_text("these are not weights")
    return ["finetune", weights, _images_folder(ctx), "--out", ctx.tmp / "new.pth", *FAST], ["notes.pth"]


def _weights_missing(ctx: Ctx):
    return (["finetune", ctx.tmp / "gone.pth", _images_folder(ctx), "--out", ctx.tmp / "new.pth",
             *FAST], ["gone.pth"])


def _weights_a_folder(ctx: Ctx):
    folder = ctx.tmp / "weights.pth"
    folder.mkdir()
    return (["finetune", folder, _images_folder(ctx), "--out", ctx.tmp / "new.pth", *FAST],
            ["weights.pth"])


def _out_exists(ctx: Ctx):
    out = ctx.tmp / "street.pth"
    out.write_bytes(b"a model the person made earlier")
    return _argv(ctx, _images_folder(ctx), out=out), ["street.pth", "--overwrite"]


def _out_is_the_parent_by_the_old_option(ctx: Ctx):
    """--force, the option's former name, still means --overwrite (scripts keep working)."""
    argv, names = _out_is_the_parent(ctx)
    return [("--force" if a == "--overwrite" else a) for a in argv], names


def _out_kept(ctx, _result) -> None:
    assert (ctx.tmp / "street.pth").read_bytes() == b"a model the person made earlier"


def _out_missing_folder(ctx: Ctx):
    return _argv(ctx, _images_folder(ctx), "--steps", "2", out=ctx.tmp / "no" / "such" / "m.pth"), []


def _out_made_with_its_folders(ctx: Ctx, result) -> None:
    """As every output: missing folders are made (checked writable before the run)."""
    assert (ctx.tmp / "no" / "such" / "m.pth").is_file()


def _out_inside_a_file(ctx: Ctx):
    blocker = ctx.tmp / "models.txt"
    blocker.write_text("a file where a folder should be")
    return _argv(ctx, _images_folder(ctx), out=blocker / "m.pth"), ["models.txt", "not a folder"]


def _out_a_folder(ctx: Ctx):
    out = ctx.tmp / "models"
    out.mkdir()
    return _argv(ctx, _images_folder(ctx), out=out), ["models"]


def _out_is_the_parent(ctx: Ctx):
    weights = ctx.tmp / "mine.pth"
    weights.write_bytes(Path(ctx.weights).read_bytes())
    return (["finetune", weights, _images_folder(ctx), "--out", weights, "--overwrite", *FAST],
            ["mine.pth"])


def _parent_kept(ctx, _result) -> None:
    assert (ctx.tmp / "mine.pth").read_bytes() == Path(ctx.weights).read_bytes()


def _one_image_with_holdout(ctx: Ctx):
    folder = ctx.tmp / "single"
    _images(folder, n=1)
    return _argv(ctx, folder, "--holdout", "0.5"), ["single", "--holdout"]


def _valid_run(ctx: Ctx):
    return _argv(ctx, _images_folder(ctx), "--steps", "1", "--holdout", "0"), []


def _valid_run_check(ctx, result) -> None:
    from sasnet_core.weights.checkpoint import read_metadata

    summary = json.loads(result.out.strip().splitlines()[-1])
    assert summary["status"] == "completed" and summary["step"] == 1
    _kind, meta = read_metadata(ctx.tmp / "new.pth")
    assert meta["data_folder"] == str((ctx.tmp / "street").resolve()) and meta["finetune_images"] == 2
    assert meta["parent"] == str(Path(ctx.weights).resolve())


CASES = [
    _bad_option("--steps", "0"),
    _bad_option("--steps", "-5"),
    _bad_option("--steps", "ten"),
    _bad_option("--holdout", "7"),
    _bad_option("--holdout", "1"),
    _bad_option("--holdout", "-0.2"),
    _bad_option("--max-minutes", "-1"),
    Case("option--max-minutes=0", lambda ctx: (_argv(ctx, _images_folder(ctx), "--max-minutes", "0"),
                                                ["--max-minutes"])),
    _bad_option("--max-minutes", "nan"),
    _bad_option("--images-per-step", "0"),
    _bad_option("--lr", "0"),
    _bad_option("--device", "banana"),
    _bad_option("--precision", "fp16"),
    Case("data-none-reviewed", _none_reviewed),
    Case("data-no-images", _no_images),
    Case("data-reviewed-cells-off-the-image", _reviewed_cells_off_the_image),
    Case("data-missing", _missing_data),
    Case("data-damaged-annotation-among-good-ones", _damaged_annotation),
    Case("data-annotation-whose-image-is-gone", _annotation_without_image),
    Case("data-one-image-cannot-be-held-out", _one_image_with_holdout),
    Case("weights-not-a-checkpoint", _weights_not_a_checkpoint),
    Case("weights-missing", _weights_missing),
    Case("weights-a-folder", _weights_a_folder),
    Case("out-exists-without-overwrite", _out_exists, check=_out_kept),
    Case("out-in-a-missing-folder", _out_missing_folder, expect=ACCEPTED, check=_out_made_with_its_folders),
    Case("out-a-folder", _out_a_folder),
    Case("out-inside-a-file", _out_inside_a_file),
    Case("out-is-the-parent-model", _out_is_the_parent, check=_parent_kept),
    Case("out-is-the-parent-model-force", _out_is_the_parent_by_the_old_option, check=_parent_kept),
    Case("valid-tiny-run", _valid_run, expect=ACCEPTED, check=_valid_run_check, timeout=180),
]
