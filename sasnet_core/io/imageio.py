"""Read images the way a person expects to see them: RGB uint8, EXIF orientation applied.

JPEG, PNG, BMP, TIFF and WebP through OpenCV (Pillow where OpenCV cannot decode a valid file,
such as float TIFF); 16-bit images are scaled to 8 bits, grayscale, palette, CMYK and alpha images
become RGB. Files are read as bytes first so non-ASCII paths work on every OS. OpenCV is imported
where it is used, so the suffix lists below cost nothing to import (the CLI registers its commands
from them before any image is read).

Size limit: an image file can declare a size far beyond its bytes (a 1 kB PNG "of" 30000 x 30000
pixels takes minutes and gigabytes to decode). The header is read first and an image declaring
more than ``max_image_pixels()`` pixels is refused at once, naming the size it declares. The limit
is ``DEFAULT_MAX_MEGAPIXELS`` (100 megapixels: 12 times a 4K frame, which the tiler counts in
bounded memory), or the number of megapixels in the environment variable ``SASNET_MAX_MEGAPIXELS``.
Pillow's and OpenCV's own limits are set to the same number, so no other route decodes more.
OpenCV decodes at most ``DECODER_MAX_PIXELS`` (its CV_IO_MAX_IMAGE_PIXELS, 2^30; past it
``imdecode`` raises instead of answering): a larger ``SASNET_MAX_MEGAPIXELS`` is refused when
read (``SettingsError`` naming the variable), so the limit a person sets is one every decoder keeps.
"""
from __future__ import annotations

import logging
import os
import re
import stat
import warnings
from pathlib import Path

import numpy as np

from sasnet_core.io.atomic import atomic_write_bytes
from sasnet_core.util.errors import ImageReadError, SettingsError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
DEFAULT_MAX_MEGAPIXELS = 100
MAX_MEGAPIXELS_ENV = "SASNET_MAX_MEGAPIXELS"
DECODER_MAX_PIXELS = 1 << 30  # OpenCV's default CV_IO_MAX_IMAGE_PIXELS; Pillow takes any limit


def max_image_pixels() -> int:
    """The largest image, in pixels, that will be decoded (see the module docstring)."""
    text = os.environ.get(MAX_MEGAPIXELS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_MEGAPIXELS * 1_000_000
    try:
        megapixels = float(text)
    except ValueError:
        megapixels = float("nan")
    if not 0 < megapixels < float("inf"):
        if text not in _WARNED:  # once: every image asks
            _WARNED.add(text)
            logging.getLogger(__name__).warning(
                "%s=%r is not a number of megapixels above 0; using the default, %d",
                MAX_MEGAPIXELS_ENV, text, DEFAULT_MAX_MEGAPIXELS)
        megapixels = DEFAULT_MAX_MEGAPIXELS
    if megapixels * 1_000_000 > DECODER_MAX_PIXELS:
        raise SettingsError(f"{MAX_MEGAPIXELS_ENV}={text} is more than OpenCV decodes "
                            f"({DECODER_MAX_PIXELS / 1e6:.0f} megapixels, 2^30 pixels); set it to "
                            f"{DECODER_MAX_PIXELS // 1_000_000} or less")
    return int(megapixels * 1_000_000)


_WARNED: set[str] = set()


def _limit_decoders(limit: int):
    """Pillow and OpenCV with our limit; their own messages silenced (ours name the file)."""
    os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] = str(limit)  # read by OpenCV at its first decode
    import cv2
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = limit
    # Pillow warns from the limit up to twice it, where it raises; we refuse those sizes ourselves
    # with a message naming the file. A process-wide filter: catch_warnings is not thread-safe, and
    # the app reads images on several threads.
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    # libpng and libjpeg warnings would otherwise reach the terminal beside our one-line message.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    return cv2, Image


def is_image(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def is_video(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def read_image(path: str | os.PathLike) -> np.ndarray:
    """H x W x 3 uint8 RGB. Raises ImageReadError naming the file."""
    path = Path(path)
    limit = max_image_pixels()
    cv2, Image = _limit_decoders(limit)
    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):  # a pipe or device would block or never end
            raise ImageReadError("is a folder, not an image file" if stat.S_ISDIR(mode)
                                 else "not a regular file (a device, pipe or socket)", path)
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise ImageReadError(f"cannot read file ({exc.strerror or exc})", path) from None
    if data.size == 0:
        raise ImageReadError("file is empty", path)
    known = _check_declared_size(data, path, limit, Image)
    # ANYDEPTH keeps 16-bit samples; COLOR makes 3 channels and applies the EXIF orientation.
    try:
        image = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    except cv2.error as exc:  # OpenCV's own size checks, or memory for what the header declares
        raise ImageReadError(f"cannot be decoded by OpenCV ({_cv2_reason(exc)})", path) from None
    except MemoryError:
        raise ImageReadError("too large to decode in the memory available", path) from None
    if image is None and known:  # a valid file OpenCV has no decoder for (float TIFF, ...)
        image = _decode_with_pillow(data, Image)
    if image is None:
        raise ImageReadError("not a readable image (damaged, truncated or unsupported format)", path)
    return to_rgb8(image, bgr=True)


def _check_declared_size(data: np.ndarray, path: Path, limit: int, Image) -> bool:
    """Refuse an image whose header declares more than ``limit`` pixels, before any decoding.
    True when Pillow recognised the header (so the file is an image of a known format)."""
    import io

    from PIL import UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data.tobytes())) as im:
            w, h = im.size
    except Image.DecompressionBombError as exc:  # more than twice the limit: only the pixel count
        found = re.search(r"\((\d+) pixels\)", str(exc))
        declared = _megapixels(int(found.group(1))) if found else "a size"
        raise ImageReadError(f"declares {declared}, more than the limit of {_megapixels(limit)}"
                             f"{_how_to_raise()}", path) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        return False  # not for Pillow; OpenCV decides (under its own limit, set to ours)
    if w <= 0 or h <= 0:
        raise ImageReadError(f"declares an impossible size of {w} x {h} pixels", path)
    if w * h > limit:
        raise ImageReadError(f"declares {w} x {h} pixels ({_megapixels(w * h)}), more than the "
                             f"limit of {_megapixels(limit)}{_how_to_raise()}", path)
    return True


def _cv2_reason(exc) -> str:
    """The one line of a cv2.error that says what failed (its text spans several lines)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:200]


def _megapixels(pixels: int) -> str:
    mp = pixels / 1e6
    return f"{mp:,.0f} megapixels" if mp >= 10 else f"{mp:.3g} megapixels"


def _how_to_raise() -> str:
    return f" (set {MAX_MEGAPIXELS_ENV} to allow larger images)"


def _decode_with_pillow(data: np.ndarray, Image) -> np.ndarray | None:
    """RGB (or gray) array from Pillow, EXIF orientation applied; None when it cannot decode."""
    import io

    from PIL import ImageOps

    try:
        with Image.open(io.BytesIO(data.tobytes())) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode not in ("L", "RGB", "F", "I", "I;16"):
                im = im.convert("RGB")
            array = np.asarray(im)
    except (OSError, ValueError, SyntaxError, EOFError):
        return None
    if array.dtype == np.int32:  # Pillow's 32-bit integer mode: keep the range it uses
        array = array.astype(np.float32) / max(float(array.max()), 1.0)
    return array[:, :, ::-1] if array.ndim == 3 else array  # to OpenCV's BGR, undone by to_rgb8


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
    _limit_decoders(max_image_pixels())
    try:
        with Image.open(path) as im:
            w, h = im.size
            orientation = im.getexif().get(0x0112, 1)
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise ImageReadError(f"not a readable image ({exc})", path) from None
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def write_image(path: str | os.PathLike, rgb: np.ndarray, quality: int = 95) -> None:
    """Write RGB uint8 (atomically) in the format the suffix names."""
    import cv2

    path = Path(path)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if path.suffix.lower() in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(path.suffix or ".png", np.ascontiguousarray(rgb[:, :, ::-1]), params)
    if not ok:
        raise ImageReadError("cannot encode image in this format", path)
    atomic_write_bytes(path, buf.tobytes())
