"""Small image and video files, valid and malformed, built byte by byte at test time.

Shared by the image and video cases of the corpus and by the reader tests, so each kind of damage
is written once: headers that declare far more pixels than the file holds, truncations, files of
one format named as another, and a Matroska video whose container states no length.
"""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np


def rgb(h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    """A textured RGB uint8 image, the left half strongly red (to check channel order)."""
    img = np.random.default_rng(seed).integers(0, 120, (h, w, 3), dtype=np.uint8)
    img[:, : w // 2, 0] = 230
    return img


def encoded(image: np.ndarray, fmt: str, mode: str | None = None, **save) -> bytes:
    """The image saved by Pillow in ``fmt`` (JPEG, PNG, BMP, TIFF, WEBP), converted to ``mode``."""
    from PIL import Image

    im = Image.fromarray(image)
    if mode is not None:
        im = im.convert(mode)
    buf = io.BytesIO()
    im.save(buf, fmt, **save)
    return buf.getvalue()


def write_png(path: Path, h: int = 48, w: int = 64, seed: int = 0) -> Path:
    """A small valid PNG at ``path`` (folders made as needed)."""
    from hostile import write_input

    return write_input(path, encoded(rgb(h, w, seed), "PNG"))


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int) -> bytes:
    """A 1 kB PNG whose header declares width x height RGB pixels (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + _png_chunk(b"IEND", b""))


def bmp_declaring(width: int, height: int) -> bytes:
    """A BMP header (no pixel data) declaring width x height 24-bit pixels."""
    return (struct.pack("<2sIHHI", b"BM", 54, 0, 0, 54)
            + struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0))


def tiff_declaring(width: int, height: int) -> bytes:
    """A little-endian TIFF with one 8-bit gray strip of one byte, declaring width x height."""
    long_, short = 4, 3
    entries = [(256, long_, width), (257, long_, height), (258, short, 8), (259, short, 1),
               (262, short, 1), (273, long_, 8), (277, short, 1), (278, long_, height), (279, long_, 1)]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        ifd += struct.pack("<HHII", tag, kind, 1, value) if kind == long_ else struct.pack("<HHIHH", tag, kind, 1, value, 0)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0)


def make_video(path: Path, frames: int = 20, size: tuple[int, int] = (64, 48), fps: float = 10.0) -> Path:
    """MJPEG video whose red channel encodes the frame number (10 per frame)."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    for i in range(frames):
        frame = np.zeros((size[1], size[0], 3), np.uint8)
        frame[:, :, 2] = (i * 10) % 250
        writer.write(frame)
    writer.release()
    return path


def make_mkv_without_duration(path: Path, frames: int = 12) -> Path:
    """A Matroska video without its Duration element, as an interrupted recording leaves it: the
    container then states no frame count. The element is overwritten by a Void element of the
    same length, so every other offset in the file stays right."""
    make_video(path, frames=frames)
    data = bytearray(path.read_bytes())
    at = data.find(b"\x44\x89")  # Duration's element ID, in the Segment Info
    assert at > 0 and data[at + 2] in (0x84, 0x88), "no Duration element to remove"
    length = 3 + (data[at + 2] & 0x0F)
    data[at:at + length] = bytes([0xEC, 0x80 | (length - 2)]) + bytes(length - 2)
    path.write_bytes(bytes(data))
    return path


def not_a_file(path: Path, kind: str) -> Path:
    """``path`` made into something named like a file that cannot be read as one: a ``folder``, a
    ``pipe`` (reading waits for a writer forever), a link to a ``device`` (/dev/zero: reading never
    ends) or a ``dangling`` link (its target does not exist)."""
    import os

    if kind == "folder":
        path.mkdir()
    elif kind == "pipe":
        os.mkfifo(path)
    elif kind == "device":
        path.symlink_to("/dev/zero")
    elif kind == "dangling":
        path.symlink_to(path.with_name(f"deleted-{path.name}"))
    else:
        raise ValueError(kind)
    return path
