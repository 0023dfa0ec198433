"""Colours of the canvas: the five levels (as in the paper's Figure 1) and density colour maps."""
from __future__ import annotations

import numpy as np

LEVELS = ("P1", "P2", "P3", "P4", "P5")  # = sasnet_core.model.sasnet.LEVELS, without importing torch at start-up

# P1 (finest, small far-away heads) ... P5 (coarsest, big near heads): five hues far apart.
LEVEL_COLOURS = ("#e6194b", "#f58231", "#ffe119", "#3cb44b", "#4363d8")
UNKNOWN_COLOUR = "#00e5ff"  # points before the model has run
SELECTED_COLOUR = "#ffffff"

# Level index -> RGBA for the patch overlay; 0 (no patch) is transparent.
LEVEL_RGBA = np.zeros((6, 4), np.uint8)
for _k, _c in enumerate(LEVEL_COLOURS, start=1):
    LEVEL_RGBA[_k] = (int(_c[1:3], 16), int(_c[3:5], 16), int(_c[5:7], 16), 255)

COLORMAPS = ("inferno", "viridis", "magma", "plasma", "turbo", "cividis")
DEFAULT_COLORMAP = "inferno"


def level_names() -> tuple[str, ...]:
    return LEVELS


def density_lut(name: str, n: int = 256) -> np.ndarray:
    """(n, 4) uint8 RGBA lookup table; the lowest eighth fades to transparent so empty ground
    shows the photo, not a flat colour."""
    import pyqtgraph as pg

    cmap = pg.colormap.get(name)
    lut = cmap.getLookupTable(0.0, 1.0, n, alpha=True).astype(np.uint8)
    ramp = np.clip(np.arange(n) / (n / 8), 0, 1)
    lut[:, 3] = (ramp * 255).astype(np.uint8)
    return lut


def density_rgba(density: np.ndarray, vmax: float, lut: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8: a density map through a LUT (for PNG export; the view uses ImageItem)."""
    idx = np.clip(density / max(vmax, 1e-12) * (len(lut) - 1), 0, len(lut) - 1).astype(np.intp)
    return lut[idx]


def blend(rgb: np.ndarray, rgba: np.ndarray, opacity: float) -> np.ndarray:
    """Alpha-blend an RGBA overlay onto an RGB image of the same size."""
    a = rgba[..., 3:4].astype(np.float32) / 255.0 * float(opacity)
    out = rgb.astype(np.float32) * (1 - a) + rgba[..., :3].astype(np.float32) * a
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
