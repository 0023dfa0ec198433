"""How an image and its head points are shown to a person, never what is counted or saved.

- ``display_lut``: brightness, contrast and gamma as one 256-entry lookup table for uint8 pixels.
  It is applied to a copy for the screen; the image the model counts and the annotation are never
  touched.
- ``head_spacing`` / ``marker_size_for``: the typical distance between neighbouring heads and the
  marker diameter (image pixels) that keeps dense crowds readable: markers about as wide as half
  the median gap, so 4,633 heads on a 984 x 648 image stay separate dots instead of one block.
"""
from __future__ import annotations

import numpy as np

BRIGHTNESS_RANGE = (-100, 100)  # percent of the full scale added
CONTRAST_RANGE = (-100, 100)  # 0 = unchanged; +100 = 4x slope, -100 = 1/4 slope around mid-grey
GAMMA_RANGE = (0.2, 5.0)  # > 1 lifts the dark tones (out = in ** (1 / gamma))

# Marker diameter in image pixels: this share of the median nearest-neighbour distance, clamped.
MARKER_SHARE_OF_SPACING = 0.5
MARKER_IMAGE_PX_RANGE = (2.0, 24.0)


def is_identity(brightness: float = 0.0, contrast: float = 0.0, gamma: float = 1.0) -> bool:
    return brightness == 0 and contrast == 0 and gamma == 1.0


def display_lut(brightness: float = 0.0, contrast: float = 0.0, gamma: float = 1.0) -> np.ndarray:
    """uint8[256]: gamma first (on [0, 1]), then contrast around mid-grey, then brightness.

    ``brightness`` and ``contrast`` are in -100..100, ``gamma`` in 0.2..5; values outside are
    refused with a ValueError naming the setting, so a damaged settings file cannot make a LUT
    that turns the image black without saying why."""
    for name, value, (lo, hi) in (("brightness", brightness, BRIGHTNESS_RANGE),
                                  ("contrast", contrast, CONTRAST_RANGE), ("gamma", gamma, GAMMA_RANGE)):
        if not np.isfinite(value) or not lo <= value <= hi:
            raise ValueError(f"{name} must be between {lo} and {hi}, got {value!r}")
    v = np.arange(256, dtype=np.float64) / 255.0
    v = v ** (1.0 / gamma)
    v = (v - 0.5) * (4.0 ** (contrast / 100.0)) + 0.5
    v = v + brightness / 100.0
    return np.clip(np.rint(v * 255.0), 0, 255).astype(np.uint8)


def apply_lut(image: np.ndarray, lut: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``lut`` applied to every channel of ``image`` (which is left unchanged), written into
    ``out`` when it has the image's shape (a buffer kept for the screen), else into a new array.

    OpenCV's table lookup reads each byte once: ``np.take`` first widened the indices to 64 bits,
    about 1.2 GB and seconds for one slider step on an 8000 x 6000 photo."""
    import cv2

    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"display adjustments need an 8-bit image, got {image.dtype}")
    lut = np.ascontiguousarray(lut, np.uint8).reshape(256)
    if out is None or out.shape != image.shape or out.dtype != np.uint8 or not out.flags.c_contiguous:
        out = np.empty_like(image)
    if image.ndim == 3 and image.shape[2] > 4:  # beyond what cv2.LUT takes in one call
        for ch in range(image.shape[2]):
            out[..., ch] = cv2.LUT(np.ascontiguousarray(image[..., ch]), lut)
        return out
    cv2.LUT(np.ascontiguousarray(image), lut, dst=out)
    return out


def head_spacing(points) -> float | None:
    """Median distance from each head to its nearest other head (image pixels); None for fewer
    than two heads. Heads on top of each other (distance 0) are left out: they say nothing about
    how far apart people stand."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    if len(pts) < 2:
        return None
    from scipy.spatial import cKDTree

    dist, _ = cKDTree(pts).query(pts, k=2)
    gaps = dist[:, 1]
    gaps = gaps[gaps > 0]
    return float(np.median(gaps)) if len(gaps) else None


def marker_size_for(points) -> float | None:
    """Marker diameter in image pixels for these heads, or None when spacing says nothing (fewer
    than two heads: the caller keeps its fixed screen size)."""
    spacing = head_spacing(points)
    if spacing is None:
        return None
    lo, hi = MARKER_IMAGE_PX_RANGE
    return float(np.clip(MARKER_SHARE_OF_SPACING * spacing, lo, hi))
