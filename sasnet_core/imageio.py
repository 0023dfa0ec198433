"""Read images the way a person expects to see them: RGB uint8, EXIF orientation applied.

JPEG, PNG, BMP, TIFF and WebP through OpenCV; 16-bit images are scaled to 8 bits, grayscale and
alpha images become RGB. Files are read as bytes first so non-ASCII paths work on every OS.
OpenCV is imported where it is used, so the suffix lists below cost nothing to import (the CLI
registers its commands from them before any image is read).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sasnet_core.errors import ImageReadError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


def is_image(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def is_video(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def read_image(path: str | os.PathLike) -> np.ndarray:
    """H x W x 3 uint8 RGB. Raises ImageReadError naming the file."""
    import cv2

    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise ImageReadError(f"cannot read file ({exc.strerror or exc})", path) from None
    if data.size == 0:
        raise ImageReadError("file is empty", path)
    # ANYDEPTH keeps 16-bit samples; COLOR makes 3 channels and applies the EXIF orientation.
    image = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    if image is None:
        raise ImageReadError("not a readable image (damaged, truncated or unsupported format)", path)
    return to_rgb8(image, bgr=True)


def to_rgb8(image: np.ndarray, bgr: bool = False) -> np.ndarray:
    """Any decoded array (gray, BGR/RGB, BGRA, 16-bit, float) to contiguous RGB uint8."""
    if image.dtype == np.uint16:
        image = (image.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image.astype(np.float32) * (255.0 if image.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.shape[2] == 4:
        image = image[:, :, :3]
    elif image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    if bgr:
        image = image[:, :, ::-1]
    return np.ascontiguousarray(image)


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) as displayed (EXIF orientation applied), from the header only."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            w, h = im.size
            orientation = im.getexif().get(0x0112, 1)
    except (OSError, UnidentifiedImageError) as exc:
        raise ImageReadError(f"not a readable image ({exc})", path) from None
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def write_image(path: str | os.PathLike, rgb: np.ndarray, quality: int = 95) -> None:
    """Write RGB uint8 (atomically) in the format the suffix names."""
    import cv2

    from sasnet_core.atomic import atomic_write_bytes

    path = Path(path)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if path.suffix.lower() in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(path.suffix or ".png", np.ascontiguousarray(rgb[:, :, ::-1]), params)
    if not ok:
        raise ImageReadError("cannot encode image in this format", path)
    atomic_write_bytes(path, buf.tobytes())
