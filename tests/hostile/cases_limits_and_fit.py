"""Limits below the decoders' own (SASNET_MAX_MEGAPIXELS above what OpenCV decodes is refused in
one line; a 40000 x 40000 header is one file's error, never a traceback that ends the run), and
annotations that do not fit their image: ``rank`` does not rank them as perfect, ``eval`` and
training refuse them, each naming the file and what does not fit. ``doctor`` names a studio home
that cannot be written."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from hostile import ACCEPTED, REFUSED, SKIPPED, Case, Ctx, media, run_cli
from hostile.cases_images import records


def _png_blank(path: Path, width: int, height: int) -> Path:
    """A whole, valid 1-bit PNG of any size that stays small on disk (rows of zeros compress)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row, packer = b"\x00" * (1 + (width + 7) // 8), zlib.compressobj(9)
    body = b"".join([packer.compress(row) for _ in range(height)] + [packer.flush()])
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def _with_env(name: str, value):
    """A ``Case.run`` that runs the command with the environment variable ``name`` set to
    ``value`` (a callable: made from the case's folder), and puts the old value back."""
    def run(ctx: Ctx, argv):
        import os

        old = os.environ.get(name)
        os.environ[name] = value(ctx) if callable(value) else value
        try:
            return run_cli(argv)
        finally:
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old
    return run


def _with_limit(value: str, command: str):
    def make(ctx: Ctx):
        image = media.write_png(ctx.tmp / "a.png")
        argv = {"count": ["count", image, "--weights", ctx.weights, "--no-progress"],
                "rank": ["rank", image, "--weights", ctx.weights, "--no-progress"],
                "eval": ["eval", ctx.tmp, "--weights", ctx.weights, "--no-progress"],
                "train": ["train", ctx.tmp, "--out", ctx.tmp / "out", "--steps", "1"]}[command]
        return argv, ["SASNET_MAX_MEGAPIXELS", value]
    return make


def _one_line(ctx: Ctx, result) -> None:
    assert len(result.err.strip().splitlines()) == 1 and result.out == "", result.err


def _huge_beside_a_good_one(command: str = "count"):
    def make(ctx: Ctx):
        _png_blank(ctx.tmp / "huge.png", 40000, 40000)
        media.write_png(ctx.tmp / "b.png")
        return [command, ctx.tmp / "huge.png", ctx.tmp / "b.png", "--weights", ctx.weights, "--json",
                "--no-progress"], ["huge.png", "1,600 megapixels", "SASNET_MAX_MEGAPIXELS"]
    return make


def _good_one_counted(ctx: Ctx, result) -> None:
    done = [r for r in records(result) if not r.get("skipped")]
    assert [Path(r["path"]).name for r in done] == ["b.png"], result.out


def _wide_strip(ctx: Ctx):
    _png_blank(ctx.tmp / "strip.png", 1_100_000, 2)  # wider than OpenCV's 2^20, few pixels
    media.write_png(ctx.tmp / "b.png")
    return ["count", ctx.tmp / "strip.png", ctx.tmp / "b.png", "--weights", ctx.weights, "--json",
            "--no-progress"], []


def _wide_strip_counted_beside(ctx: Ctx, result) -> None:
    """2.2 megapixels are within every limit: counted, however odd its shape, and so is the next."""
    done = [r for r in records(result) if not r.get("skipped")]
    assert [Path(r["path"]).name for r in done] == ["strip.png", "b.png"], result.out
    assert done[0]["width"] == 1_100_000 and done[0]["height"] == 2


# -- annotations that do not fit their image -------------------------------------------------------
def _annotated(ctx: Ctx, name: str = "a.png", h: int = 150, w: int = 200, **fields) -> Path:
    from sasnet_core.annotations.annotation import Annotation, save_annotation

    image = media.write_png(ctx.tmp / name, h, w)
    pts = fields.pop("points", np.array([[20.0, 30.0], [50.0, 60.0]]))
    ann = Annotation(str(image), fields.pop("image_size", (w, h)), pts, reviewed=True, **fields)
    save_annotation(ann, image.with_name(image.name + ".sasnet.json"))
    return image


def _others_file(ctx: Ctx) -> None:
    other = _annotated(ctx, "b.png")
    image = media.write_png(ctx.tmp / "a.png", 150, 200)
    image.with_name("a.png.sasnet.json").write_bytes(other.with_name("b.png.sasnet.json").read_bytes())


_MISFITS = {
    "another-images-file": (_others_file, ["annotation of b.png"]),
    "made-on-5000x4000": (lambda ctx: _annotated(ctx, image_size=(5000, 4000)), ["5000x4000", "200x150"]),
    "points-far-off": (lambda ctx: _annotated(ctx, points=np.array([[20.0, 30.0], [900.0, 4000.0]])),
                       ["1 of 2 points lie outside"]),
    "zero-area-region": (lambda ctx: _annotated(ctx, rois=[np.array([[0.0, 0.0], [50.0, 50.0], [100.0, 100.0]])]),
                         ["region of interest 1 encloses no area"]),
    "single-point-region": (lambda ctx: _annotated(ctx, rois=[np.array([[5.0, 5.0], [5.0, 5.0], [5.0, 5.0]])]),
                            ["encloses no area"]),
}


def _rank_misfit(kind: str, json_out: bool = False):
    build, words = _MISFITS[kind]

    def make(ctx: Ctx):
        build(ctx)
        argv = ["rank", ctx.tmp / "a.png", "--weights", ctx.weights, "--by", "annotated-error", "--no-progress"]
        return argv + (["--json"] if json_out else []), ["a.png", "not used", *words]
    return make


def _not_ranked_as_perfect(ctx: Ctx, result) -> None:
    if result.out.lstrip().startswith("{"):
        (rec,) = records(result)
        assert rec["annotated_error"] is None and rec["annotated_count"] is None and "does not fit" in rec["error"]
    else:
        line = [row for row in result.out.splitlines() if "a.png" in row][0]
        assert line.split()[-1] == "-" and line.split()[-2] == "-", result.out  # no annotated count, no error


def _rank_fitting(ctx: Ctx):
    _annotated(ctx)
    return ["rank", ctx.tmp / "a.png", "--weights", ctx.weights, "--json", "--by", "annotated-error",
            "--no-progress"], []


def _fitting_is_used(ctx: Ctx, result) -> None:
    (rec,) = records(result)
    assert rec["annotated_count"] == 2 and rec["annotated_error"] is not None and "error" not in rec


def _eval_misfit(kind: str):
    build, words = _MISFITS[kind]

    def make(ctx: Ctx):
        build(ctx)
        _annotated(ctx, "c.png")  # a good one beside it
        return ["eval", ctx.tmp, "--weights", ctx.weights, "--no-progress"], ["a.png.sasnet.json", "does not fit",
                                                                              *words]
    return make


def _train_misfit(kind: str, command: str):
    build, words = _MISFITS[kind]

    def make(ctx: Ctx):
        build(ctx)
        _annotated(ctx, "c.png")
        out = ctx.tmp / "out"
        argv = (["train", ctx.tmp, "--out", out, "--steps", "1"] if command == "train" else
                ["finetune", ctx.weights, ctx.tmp, "--out", out / "m.pth", "--steps", "1"])
        return argv + ["--no-progress"], ["a.png.sasnet.json", "does not fit", *words]
    return make


def _doctor_home(kind: str):
    def home(ctx: Ctx) -> str:
        if kind == "unwritable":
            return "/proc/sasnet-studio-home"  # nothing can be made there, not even by root
        (ctx.tmp / "plain").write_text("a file")
        return str(ctx.tmp / "plain" / "home")

    return _with_env("SASNET_STUDIO_HOME", home)


def _doctor_says(words: str):
    def check(ctx: Ctx, result) -> None:
        missing = result.out.split("missing:", 1)[1]
        assert words in missing and "SASNET_STUDIO_HOME" in missing, result.out
    return check


def _limit_case(name: str, value: str, command: str) -> Case:
    return Case(name, _with_limit(value, command), REFUSED, _one_line, run=_with_env("SASNET_MAX_MEGAPIXELS", value))


CASES = [
    _limit_case("megapixels-2000-count", "2000", "count"),
    _limit_case("megapixels-1e12-rank", "1e12", "rank"),
    _limit_case("megapixels-1074-count", "1074", "count"),
    _limit_case("megapixels-5000-eval", "5000", "eval"),
    _limit_case("megapixels-99999-train", "99999", "train"),
    Case("header-40000x40000-default-limit", _huge_beside_a_good_one(), SKIPPED, _good_one_counted, timeout=240),
    Case("header-40000x40000-limit-1073", _huge_beside_a_good_one(), SKIPPED, _good_one_counted, timeout=240,
         run=_with_env("SASNET_MAX_MEGAPIXELS", "1073")),
    Case("header-40000x40000-rank", _huge_beside_a_good_one("rank"), SKIPPED, _good_one_counted, timeout=240),
    Case("strip-1100000-pixels-wide", _wide_strip, ACCEPTED, _wide_strip_counted_beside, timeout=240),
    # Counting the first image converts the model (a minute on a busy 2-core machine).
    *(Case(f"rank-{kind}", _rank_misfit(kind), SKIPPED, _not_ranked_as_perfect, timeout=240) for kind in _MISFITS),
    Case("rank-json-another-images-file", _rank_misfit("another-images-file", json_out=True), SKIPPED,
         _not_ranked_as_perfect, timeout=240),
    Case("rank-fitting-annotation-is-used", _rank_fitting, ACCEPTED, _fitting_is_used, timeout=240),
    *(Case(f"eval-{kind}", _eval_misfit(kind), REFUSED, timeout=240)
      for kind in ("another-images-file", "made-on-5000x4000", "points-far-off", "zero-area-region")),
    Case("train-another-images-file", _train_misfit("another-images-file", "train"), REFUSED, timeout=240),
    Case("finetune-made-on-5000x4000", _train_misfit("made-on-5000x4000", "finetune"), REFUSED, timeout=240),
    Case("doctor-home-unwritable", lambda ctx: (["doctor"], []), ACCEPTED, _doctor_says("cannot be written"),
         run=_doctor_home("unwritable")),
    Case("doctor-home-under-a-file", lambda ctx: (["doctor"], []), ACCEPTED, _doctor_says("cannot be used"),
         run=_doctor_home("file")),
]
