"""Image files through ``sasnet count --json``: decompression bombs (headers declaring far more
pixels than the file holds), damaged, empty and mislabelled files, things named like images that
are not files; and odd but valid images, which must be counted at their true size.

A damaged image among the inputs is a reported skip (exit 1, named on stderr, a ``skipped`` JSON
record); an input that leaves nothing to count at all is refused (exit 2)."""
from __future__ import annotations

import json

import numpy as np

from hostile import ACCEPTED, REFUSED, SKIPPED, Case, Ctx, media, write_input


def records(result) -> list[dict]:
    """The JSON lines of a count, parsed strictly (a NaN token fails)."""
    def no_constants(token):
        raise AssertionError(f"{token} in the JSON output")

    return [json.loads(line, parse_constant=no_constants) for line in result.out.splitlines() if line.strip()]


def _count(ctx: Ctx, *paths) -> list:
    return ["count", *paths, "--weights", ctx.weights, "--json", "--no-progress"]


def skipped(name: str, file: str, data, *words: str) -> Case:
    """``file`` holding ``data`` is not counted: exit 1, named on stderr and in a skipped record
    whose error contains ``words``."""
    def make(ctx: Ctx):
        path = write_input(ctx.tmp / file, data(ctx) if callable(data) else data)
        return _count(ctx, path), [path.name, *words]

    def check(ctx: Ctx, result) -> None:
        (rec,) = records(result)
        assert rec["skipped"] is True and rec["count"] is None, rec
        assert rec["path"].endswith(file), rec
        for word in words:
            assert word in rec["error"], rec

    return Case(name, make, SKIPPED, check)


def counted(name: str, file: str, data, size: tuple[int, int]) -> Case:
    """A valid (if unusual) image: counted, at its displayed (width, height)."""
    def make(ctx: Ctx):
        return _count(ctx, write_input(ctx.tmp / file, data() if callable(data) else data)), []

    def check(ctx: Ctx, result) -> None:
        (rec,) = records(result)
        assert "skipped" not in rec and np.isfinite(rec["count"]), rec
        assert (rec["width"], rec["height"]) == size, rec

    return Case(name, make, ACCEPTED, check)


def _exif_rotated() -> bytes:
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise
    return media.encoded(media.rgb(48, 64), "JPEG", exif=exif)


def _png16() -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", (np.arange(48 * 64).reshape(48, 64) * 20).astype(np.uint16))
    return buf.tobytes()


def _multipage_tiff() -> bytes:
    import io

    from PIL import Image

    pages = [Image.fromarray(media.rgb(48, 64, seed=i)) for i in range(3)]
    buf = io.BytesIO()
    pages[0].save(buf, "TIFF", save_all=True, append_images=pages[1:])
    return buf.getvalue()


def _cut(fmt: str, keep: float) -> bytes:
    data = media.encoded(media.rgb(), fmt)
    return data[: int(len(data) * keep)]


def _bad_crc() -> bytes:
    data = bytearray(media.encoded(media.rgb(), "PNG"))
    data[29] ^= 0xFF  # inside IHDR's CRC
    return bytes(data)


def _not_a_file(kind: str):
    """An explicit argument named like an image that is a folder, a pipe or a link to a device."""
    def make(ctx: Ctx):
        return _count(ctx, media.not_a_file(ctx.tmp / "x.jpg", kind)), ["x.jpg"]

    return make


def _inside_a_folder(kind: str):
    """The same things inside a folder beside a valid image: the image is counted, they are named."""
    def make(ctx: Ctx):
        folder = ctx.tmp / "shots"
        write_input(folder / "ok.png", media.encoded(media.rgb(), "PNG"))
        if kind == "loop":
            bad = folder / "again"
            bad.symlink_to(folder, target_is_directory=True)
        else:
            bad = media.not_a_file(folder / "x.jpg", kind)
        return _count(ctx, folder), [str(bad)]

    def check(ctx: Ctx, result) -> None:
        recs = records(result)
        assert [r["path"].rsplit("/", 1)[1] for r in recs if not r.get("skipped")] == ["ok.png"], recs

    return Case(f"{kind}-beside-an-image", make, SKIPPED, check)


def _only_hidden(ctx: Ctx):
    folder = ctx.tmp / "shots"
    write_input(folder / ".secret.png", media.encoded(media.rgb(), "PNG"))
    write_input(folder / ".cache" / "thumb.png", media.encoded(media.rgb(), "PNG"))
    return _count(ctx, folder), ["shots", "holds no images"]


CASES = [
    # headers that declare far more pixels than the file holds: refused at once, size named
    skipped("png-declares-30000x30000", "bomb.png", media.png_declaring(30000, 30000), "900 megapixels"),
    skipped("png-declares-100000x100000", "bomb.png", media.png_declaring(100000, 100000), "megapixels"),
    skipped("png-just-over-the-limit", "wide.png", media.png_declaring(11000, 10000), "11000 x 10000"),
    skipped("png-declares-max-int-size", "bomb.png", media.png_declaring(2**31 - 1, 2**31 - 1), "megapixels"),
    skipped("bmp-header-bomb", "bomb.bmp", media.bmp_declaring(100000, 100000), "megapixels"),
    skipped("bmp-top-down-bomb", "bomb.bmp", media.bmp_declaring(60000, -60000), "megapixels"),
    skipped("tiff-declares-200000x200000", "huge.tif", media.tiff_declaring(200000, 200000), "megapixels"),
    skipped("tiff-declares-huge-strip", "huge.tiff", media.tiff_declaring(1, 4_000_000_000), "megapixels"),
    skipped("png-declares-zero-width", "flat.png", media.png_declaring(0, 100), "not a readable image"),
    # damaged, empty and mislabelled files
    skipped("zero-byte-jpeg", "empty.jpg", b"", "empty"),
    skipped("text-named-jpg", "notes.jpg", b"shopping list: eggs, milk\n", "not a readable image"),
    skipped("html-named-png", "page.png", b"<!doctype html><html><body>404</body></html>", "not a readable image"),
    skipped("random-bytes-webp", "noise.webp", bytes(np.random.default_rng(1).integers(0, 256, 4096, np.uint8)),
            "not a readable image"),
    skipped("jpeg-cut-in-half", "cut.jpg", _cut("JPEG", 0.5), "not a readable image"),
    skipped("jpeg-without-its-last-bytes", "cut.jpg", _cut("JPEG", 0.97), "not a readable image"),
    skipped("png-cut-in-half", "cut.png", _cut("PNG", 0.5), "not a readable image"),
    skipped("bmp-cut-in-half", "cut.bmp", _cut("BMP", 0.5), "not a readable image"),
    skipped("tiff-cut-in-half", "cut.tif", _cut("TIFF", 0.5), "not a readable image"),
    skipped("webp-cut-in-half", "cut.webp", _cut("WEBP", 0.5), "not a readable image"),
    skipped("jpeg-markers-only", "head.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00",
            "not a readable image"),
    skipped("png-signature-only", "sig.png", b"\x89PNG\r\n\x1a\n", "not a readable image"),
    skipped("png-with-a-bad-crc", "crc.png", _bad_crc(), "not a readable image"),
    # named like an image, but not a file to read
    Case("folder-named-x.jpg", _not_a_file("folder"), REFUSED),
    Case("pipe-named-x.jpg", _not_a_file("pipe"), REFUSED),
    Case("link-to-dev-zero-named-x.jpg", _not_a_file("device"), REFUSED),
    _inside_a_folder("pipe"),
    _inside_a_folder("device"),
    _inside_a_folder("dangling"),
    _inside_a_folder("loop"),
    Case("folder-with-only-hidden-images", _only_hidden, REFUSED),
    # odd but valid: counted at the size a person sees
    counted("png-bytes-named-jpg", "photo.jpg", media.encoded(media.rgb(48, 64), "PNG"), (64, 48)),
    counted("jpeg-bytes-named-png", "photo.png", media.encoded(media.rgb(48, 64), "JPEG"), (64, 48)),
    counted("uppercase-suffix", "PHOTO.JPG", media.encoded(media.rgb(48, 64), "JPEG"), (64, 48)),
    counted("non-ascii-name", "Ωmega café 人群.jpg", media.encoded(media.rgb(48, 64), "JPEG"), (64, 48)),
    counted("16-bit-png", "deep.png", _png16, (64, 48)),
    counted("grayscale-jpeg", "gray.jpg", media.encoded(media.rgb(48, 64), "JPEG", "L"), (64, 48)),
    counted("cmyk-jpeg", "print.jpg", media.encoded(media.rgb(48, 64), "JPEG", "CMYK"), (64, 48)),
    counted("palette-png", "pal.png", media.encoded(media.rgb(48, 64), "PNG", "P"), (64, 48)),
    counted("rgba-png", "alpha.png", media.encoded(media.rgb(48, 64), "PNG", "RGBA"), (64, 48)),
    counted("gray-alpha-png", "la.png", media.encoded(media.rgb(48, 64), "PNG", "LA"), (64, 48)),
    counted("one-bit-png", "bw.png", media.encoded(media.rgb(48, 64), "PNG", "1"), (64, 48)),
    counted("float-tiff", "float.tif", media.encoded(media.rgb(48, 64), "TIFF", "F"), (64, 48)),
    counted("cmyk-tiff", "print.tiff", media.encoded(media.rgb(48, 64), "TIFF", "CMYK"), (64, 48)),
    counted("multi-page-tiff", "pages.tif", _multipage_tiff, (64, 48)),
    counted("exif-rotated-jpeg", "turned.jpg", _exif_rotated, (48, 64)),
    counted("jpeg-with-trailing-bytes", "tail.jpg", media.encoded(media.rgb(48, 64), "JPEG") + b"\0" * 500, (64, 48)),
    counted("one-pixel", "dot.png", media.encoded(media.rgb(1, 1), "PNG"), (1, 1)),
    counted("one-row-3000-wide", "line.png", media.encoded(media.rgb(1, 3000), "PNG"), (3000, 1)),
]
