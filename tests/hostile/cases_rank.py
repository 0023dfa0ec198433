"""``sasnet rank`` options, inputs and outputs: bad values are usage errors naming the option, a CSV
that exists is kept, damaged images and annotations are named and the rest is still ranked."""
from __future__ import annotations

import csv
from pathlib import Path

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


def _image(path: Path, h: int = 48, w: int = 64, seed: int = 0) -> Path:
    return media.write_png(path, h, w, seed)


def _rank(ctx: Ctx, *args) -> list:
    return ["rank", *args, "--weights", ctx.weights, "--no-progress"]


def bad_option(option: str, value: str) -> Case:
    return bad_option_case(_rank, option, value, f"rank-{option[2:]}={value}")


def _csv_is_a_folder(ctx: Ctx):
    (ctx.tmp / "out.csv").mkdir()
    return _rank(ctx, _image(ctx.tmp / "a.png"), "--csv", ctx.tmp / "out.csv"), ["--csv", "out.csv", "is a folder"]


def _csv_exists(ctx: Ctx):
    write_input(ctx.tmp / "ranking.csv", "keep me\n")
    return _rank(ctx, _image(ctx.tmp / "a.png"), "--csv", ctx.tmp / "ranking.csv"), ["ranking.csv", "--overwrite"]


def _csv_kept(ctx: Ctx, result) -> None:
    assert (ctx.tmp / "ranking.csv").read_text() == "keep me\n"


def _csv_in_missing_folder(ctx: Ctx):
    return _rank(ctx, _image(ctx.tmp / "a.png"), "--csv", ctx.tmp / "nowhere" / "r.csv"), []


def _csv_written_in_the_new_folder(ctx: Ctx, result) -> None:
    """Like eval's --csv and count's --save-*: missing folders are made."""
    assert (ctx.tmp / "nowhere" / "r.csv").read_text().startswith("path,count,")


def _csv_under_a_file(ctx: Ctx):
    write_input(ctx.tmp / "plain", "a file\n")
    return _rank(ctx, _image(ctx.tmp / "a.png"), "--csv", ctx.tmp / "plain" / "r.csv"), ["r.csv", "not a folder"]


def _json_and_csv(ctx: Ctx):
    return _rank(ctx, _image(ctx.tmp / "a.png"), "--json", "--csv", ctx.tmp / "r.csv"), ["--csv", "--json"]


def _only_missing(ctx: Ctx):
    return _rank(ctx, ctx.tmp / "no_such_folder"), ["no_such_folder", "nothing to rank"]


def _empty_folder(ctx: Ctx):
    (ctx.tmp / "empty").mkdir()
    return _rank(ctx, ctx.tmp / "empty"), ["empty", "holds no images"]


def _one_line(ctx: Ctx, result) -> None:
    assert len(result.err.splitlines()) == 1, result.err


def _text(ctx: Ctx):
    _image(ctx.tmp / "in" / "a.png")
    _image(ctx.tmp / "in" / "a_much_longer_name.png")
    return _rank(ctx, ctx.tmp / "in"), []


def _text_has_a_header(ctx: Ctx, result) -> None:
    header, *rows = result.out.splitlines()
    assert header.split() == ["path", "count", "uncertainty", "annotated", "error"], result.out
    assert len(rows) == 2 and len({len(row) for row in [header, *rows]}) == 1, "columns not aligned"


def _damaged_image_beside_good(ctx: Ctx):
    _image(ctx.tmp / "in" / "good.png")
    write_input(ctx.tmp / "in" / "broken.jpg", b"\xff\xd8\xff not really a jpeg")
    return _rank(ctx, ctx.tmp / "in", "--json"), ["broken.jpg"]


def _good_ranked_broken_skipped(ctx: Ctx, result) -> None:
    rows = records(result)
    assert [r["path"].rsplit("/", 1)[-1] for r in rows] == ["good.png", "broken.jpg"]
    assert rows[0]["count"] is not None and rows[1]["skipped"] is True


def _damaged_annotation(ctx: Ctx):
    _image(ctx.tmp / "in" / "a.png")
    write_input(ctx.tmp / "in" / "a.png.sasnet.json", '{"format": "sasnet-annotation", "points": [[1, "x"]]}')
    return _rank(ctx, ctx.tmp / "in", "--json"), ["a.png.sasnet.json"]


def _ranked_without_annotation(ctx: Ctx, result) -> None:
    (row,) = records(result)
    assert row["count"] is not None and row["annotated_count"] is None and "error" in row


def _video_among_images(ctx: Ctx):
    _image(ctx.tmp / "in" / "a.png")
    write_input(ctx.tmp / "in" / "clip.mp4", b"not decoded: rank takes images only")
    return _rank(ctx, ctx.tmp / "in"), ["clip.mp4", "sasnet count"]


def _damaged_weights(ctx: Ctx):
    weights = write_input(ctx.tmp / "junk.pth", b"this is no checkpoint")
    return ["rank", _image(ctx.tmp / "a.png"), "--weights", weights, "--no-progress"], ["junk.pth"]


def _annotated(ctx: Ctx):
    from sasnet_core.annotations.annotation import Annotation
    from sasnet_core.annotations.store import write_annotation

    image = _image(ctx.tmp / "in" / "a.png")
    write_annotation(Annotation(str(image), None, [[5.0, 5.0], [20.0, 30.0], [60.0, 40.0]]), image)
    _image(ctx.tmp / "in" / "b.png", seed=1)
    return _rank(ctx, ctx.tmp / "in", "--by", "annotated-error", "--csv", ctx.tmp / "r.csv"), []


def _annotated_first_with_its_error(ctx: Ctx, result) -> None:
    with open(ctx.tmp / "r.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [Path(r["path"]).name for r in rows] == ["a.png", "b.png"]
    assert rows[0]["annotated_count"] == "3"
    assert abs(float(rows[0]["annotated_error"]) - abs(float(rows[0]["count"]) - 3)) < 1e-3
    assert rows[1]["annotated_count"] == ""


def _smaller_than_a_patch(ctx: Ctx):
    return _rank(ctx, _image(ctx.tmp / "tiny.png", h=12, w=20), "--json"), []


def _downscaled(ctx: Ctx):
    return _rank(ctx, _image(ctx.tmp / "wide.png", h=80, w=300), "--max-side", "64", "--json"), []


def _one_finite_score(ctx: Ctx, result) -> None:
    (row,) = records(result)
    assert row["count"] is not None and 0 <= row["uncertainty"] <= max(row["count"], 0) + 1e-3


CASES = [
    bad_option("--by", "size"),
    bad_option("--batch-size", "0"),
    bad_option("--batch-size", "many"),
    bad_option("--max-side", "10"),
    bad_option("--tile", "5"),
    bad_option("--precision", "int3"),
    bad_option("--backend", "tensorrt"),
    *impossible_engine_cases(lambda ctx, *options: _rank(ctx, _image(ctx.tmp / "a.png"), *options), "rank-"),
    Case("rank-csv-is-a-folder", _csv_is_a_folder, REFUSED),
    Case("rank-csv-exists", _csv_exists, REFUSED, _csv_kept),
    Case("rank-csv-in-missing-folder", _csv_in_missing_folder, ACCEPTED, _csv_written_in_the_new_folder),
    Case("rank-csv-under-a-file", _csv_under_a_file, REFUSED),
    Case("rank-json-and-csv", _json_and_csv, REFUSED),
    Case("rank-only-missing", _only_missing, REFUSED, _one_line),
    Case("rank-text-has-a-header", _text, ACCEPTED, _text_has_a_header),
    Case("rank-empty-folder", _empty_folder, REFUSED),
    Case("rank-damaged-weights", _damaged_weights, REFUSED),
    Case("rank-damaged-image-beside-good", _damaged_image_beside_good, SKIPPED, _good_ranked_broken_skipped),
    Case("rank-damaged-annotation", _damaged_annotation, SKIPPED, _ranked_without_annotation),
    Case("rank-video-among-images", _video_among_images, SKIPPED),
    Case("rank-annotated-error-order", _annotated, ACCEPTED, _annotated_first_with_its_error),
    Case("rank-image-smaller-than-a-patch", _smaller_than_a_patch, ACCEPTED, _one_finite_score),
    Case("rank-downscaled-image", _downscaled, ACCEPTED, _one_finite_score),
]
