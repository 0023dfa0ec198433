"""``sasnet count`` options and outputs: every bad value is a usage error naming the option; saved
densities and points never map two images to one file; missing inputs are skipped records."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hostile import (
    ACCEPTED,
    REFUSED,
    SKIPPED,
    Case,
    Ctx,
    bad_option_case,
    impossible_engine_cases,
    media,
    write_input,
)
from hostile.cases_images import records


def _image(path: Path, h: int = 40, w: int = 48, seed: int = 0) -> Path:
    return media.write_png(path, h, w, seed)


def _count(ctx: Ctx, *args) -> list:
    return ["count", *args, "--weights", ctx.weights, "--no-progress"]


def bad_option(option: str, value: str) -> Case:
    return bad_option_case(_count, option, value, f"{option[2:]}={value}")


def _nothing_saved(ctx: Ctx, result) -> None:
    assert not (ctx.tmp / "out").exists(), "refused, yet something was written"


def _save_into_a_file(option: str):
    def make(ctx: Ctx):
        taken = write_input(ctx.tmp / "results.txt", "keep me\n")
        return _count(ctx, _image(ctx.tmp / "a.png"), option, taken), [option, "results.txt", "is a file"]

    def check(ctx: Ctx, result) -> None:
        assert (ctx.tmp / "results.txt").read_text() == "keep me\n"

    return Case(f"{option[2:]}-is-a-file", make, REFUSED, check)


def _colliding(layout: tuple[str, str], option: str, as_folder: bool):
    """Two inputs whose outputs would still be one file: refused before counting, naming both."""
    def make(ctx: Ctx):
        paths = [_image(ctx.tmp / "in" / rel, seed=i) for i, rel in enumerate(layout)]
        inputs = [ctx.tmp / "in"] if as_folder else paths
        return _count(ctx, *inputs, option, ctx.tmp / "out"), [str(p) for p in paths]

    name = f"{'folder' if as_folder else 'files'}-{layout[0]}-and-{layout[1]}-{option[2:]}".replace("/", "_")
    return Case(name, make, REFUSED, _nothing_saved)


def _same_names_in_sub_folders(ctx: Ctx):
    for i, sub in enumerate(("a", "b", "a/deeper")):
        _image(ctx.tmp / "in" / sub / "x.png", h=40 + 8 * i, seed=i)
    return _count(ctx, ctx.tmp / "in", "--json", "--save-density", ctx.tmp / "out" / "d",
                  "--save-points", ctx.tmp / "out" / "p"), []


def _each_kept_apart(ctx: Ctx, result) -> None:
    recs = records(result)
    assert len(recs) == 3
    for rec in recs:
        rel = Path(rec["path"]).relative_to(ctx.tmp / "in")
        density = np.load(ctx.tmp / "out" / "d" / rel.with_suffix(".npy"))
        assert density.shape == (rec["height"], rec["width"])
        assert abs(float(density.sum()) - rec["count"]) <= 1e-3 * max(1.0, rec["count"]) + 1e-4
        assert (ctx.tmp / "out" / "p" / rel.with_suffix(".txt")).is_file()


def _missing_beside_valid(ctx: Ctx):
    return _count(ctx, _image(ctx.tmp / "a.png"), ctx.tmp / "gone.jpg", "--json"), ["gone.jpg", "no such file"]


def _missing_is_a_record(ctx: Ctx, result) -> None:
    recs = {Path(r["path"]).name: r for r in records(result)}
    assert recs["gone.jpg"] == {"path": str(ctx.tmp / "gone.jpg"), "count": None,
                                "error": "no such file or folder", "skipped": True}
    assert recs["a.png"]["count"] is not None


def _only_missing(ctx: Ctx):
    return _count(ctx, ctx.tmp / "gone.jpg", ctx.tmp / "also_gone"), ["gone.jpg", "also_gone"]


def _one_line_per_problem(ctx: Ctx, result) -> None:
    """Each missing input is one error line; no closing "nothing to count" repeats them."""
    lines = result.err.splitlines()
    assert len(lines) == 2 and all("error:" in line for line in lines), result.err


def _one_missing(ctx: Ctx):
    return _count(ctx, ctx.tmp / "gone.jpg"), ["gone.jpg: no such file or folder; nothing to count"]


def _one_line(ctx: Ctx, result) -> None:
    assert len(result.err.splitlines()) == 1, result.err


def _earlier_outputs(option: str, suffix: str, *extra: str):
    """Files an earlier run saved: refused before counting unless --overwrite."""
    def make(ctx: Ctx):
        image = _image(ctx.tmp / "a.png")
        write_input(ctx.tmp / "out" / f"a{suffix}", "an earlier run\n")
        names = [] if extra else [f"a{suffix}", "--overwrite"]
        return _count(ctx, image, option, ctx.tmp / "out", *extra), names

    def check(ctx: Ctx, result) -> None:
        kept = (ctx.tmp / "out" / f"a{suffix}").read_bytes() == b"an earlier run\n"
        assert kept != bool(extra), "replaced without --overwrite" if kept is False else "not replaced"
        if not extra:
            assert result.out == "", "counted before refusing"

    name = f"{option[2:]}-over-an-earlier-run" + ("-with-overwrite" if extra else "")
    return Case(name, make, ACCEPTED if extra else REFUSED, check)


def _unknown_option(ctx: Ctx):
    return _count(ctx, _image(ctx.tmp / "a.png"), "--frobnicate"), ["usage: sasnet count", "--frobnicate"]


def _not_media(ctx: Ctx):
    return _count(ctx, write_input(ctx.tmp / "notes.txt", "x")), ["notes.txt", "not an image or video"]


def _empty_folder(ctx: Ctx):
    (ctx.tmp / "empty").mkdir()
    return _count(ctx, ctx.tmp / "empty"), ["empty", "holds no images"]


def accepted(name: str, *args: str, check_size: tuple[int, int] = (48, 40)) -> Case:
    """Valid options at their limits: counted, in the image's own pixels."""
    def make(ctx: Ctx):
        return _count(ctx, _image(ctx.tmp / "a.png"), "--json", *args), []

    def check(ctx: Ctx, result) -> None:
        (rec,) = records(result)
        assert rec["count"] is not None and (rec["width"], rec["height"]) == check_size, rec

    return Case(name, make, ACCEPTED, check)


def _save_into_new_nested_folder(ctx: Ctx):
    return _count(ctx, _image(ctx.tmp / "a.png"), "--save-density", ctx.tmp / "new" / "deep" / "d"), []


def _saved(ctx: Ctx, result) -> None:
    density = np.load(ctx.tmp / "new" / "deep" / "d" / "a.npy")
    assert density.shape == (40, 48) and density.dtype == np.float32


def _tiled_around_a_damaged_one(ctx: Ctx):
    """Tiles are reported per image of a batch by its place in it: a damaged image among tiled
    ones must neither break that nor lose a record."""
    good = [_image(ctx.tmp / "a.png", 96, 128), _image(ctx.tmp / "c.png", 80, 96, seed=1)]
    broken = write_input(ctx.tmp / "b.png", b"\x89PNG\r\n\x1a\n not really")
    return _count(ctx, good[0], broken, good[1], "--tile", "64", "--batch-size", "3", "--json",
                  "--backend", "torch"), ["b.png"]


def _each_tiled_image_counted(ctx: Ctx, result) -> None:
    rows = records(result)
    assert [Path(r["path"]).name for r in rows] == ["a.png", "b.png", "c.png"]
    assert [r["count"] is None for r in rows] == [False, True, False]
    assert [(r.get("width"), r.get("height")) for r in (rows[0], rows[2])] == [(128, 96), (96, 80)]


CASES = [
    *(bad_option(o, v) for o, v in [
        ("--batch-size", "0"), ("--batch-size", "-1"), ("--batch-size", "1.5"), ("--batch-size", "many"),
        ("--tile", "-5"), ("--tile", "10"), ("--max-side", "10"), ("--max-side", "0"), ("--max-side", "-64"),
        ("--every", "0"), ("--every", "-3"), ("--time-step", "-1"), ("--time-step", "0"),
        ("--time-step", "nan"), ("--time-step", "inf"), ("--device", "banana"), ("--device", "cuda:x"),
        ("--precision", "fp8"), ("--backend", "tensorrt"),
    ]),
    *impossible_engine_cases(lambda ctx, *options: _count(ctx, _image(ctx.tmp / "a.png"), *options)),
    _save_into_a_file("--save-density"),
    _save_into_a_file("--save-points"),
    _colliding(("a/x.png", "b/x.png"), "--save-density", as_folder=False),
    _colliding(("a/x.png", "a/x.jpg"), "--save-points", as_folder=True),
    _colliding(("x.png", "x.tif"), "--save-density", as_folder=True),
    Case("same-names-in-sub-folders", _same_names_in_sub_folders, ACCEPTED, _each_kept_apart),
    Case("missing-beside-valid", _missing_beside_valid, SKIPPED, _missing_is_a_record),
    Case("only-missing-inputs", _only_missing, REFUSED, _one_line_per_problem),
    Case("one-missing-input", _one_missing, REFUSED, _one_line),
    _earlier_outputs("--save-density", ".npy"),
    _earlier_outputs("--save-points", ".txt"),
    _earlier_outputs("--save-density", ".npy", "--overwrite"),
    _earlier_outputs("--save-points", ".txt", "--overwrite"),
    Case("unknown-option-shows-the-count-usage", _unknown_option, REFUSED),
    Case("not-an-image-or-video", _not_media, REFUSED),
    Case("empty-folder", _empty_folder, REFUSED),
    Case("save-into-a-new-nested-folder", _save_into_new_nested_folder, ACCEPTED, _saved),
    accepted("smallest-max-side", "--max-side", "64"),
    accepted("tile-0-means-never", "--tile", "0"),
    accepted("smallest-tile", "--tile", "64"),
    Case("tiled-images-around-a-damaged-one", _tiled_around_a_damaged_one, SKIPPED, _each_tiled_image_counted),
    accepted("batch-of-one", "--batch-size", "1"),
    accepted("device-cpu", "--device", "CPU"),
]
