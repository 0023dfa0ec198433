"""What the model sees, drawn over the image: the density map, the per-patch selected level and
the per-patch uncertainty.

Both are ``ImageItem`` subclasses placed over the image with ``setRect``, so they are small
arrays (the density at display resolution, the level map at one pixel per 32 x 32 patch) that
the view scales; the GUI thread never converts a full-resolution map.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsPathItem

from sasnet_gui.canvas.colors import DEFAULT_COLORMAP, LEVEL_RGBA, density_lut

# The colour bar speaks of people per patch of the released model (32 x 32 pixels), not per pixel.
# Written out, not imported from sasnet_core.model.sasnet.PATCH_SIZE, because that comes with torch,
# which the window does not load to draw; tests/test_engine_one_owner.py holds the two equal.
PATCH_SIDE = 32
PATCH_AREA = PATCH_SIDE * PATCH_SIDE


class DensityOverlay(pg.ImageItem):
    """The predicted density, in people per patch (PATCH_AREA pixels), through a colour map with alpha."""

    def __init__(self):
        super().__init__(axisOrder="row-major")
        self.colormap = DEFAULT_COLORMAP
        self.vmax = 1.0
        self.setLookupTable(density_lut(self.colormap))
        self.setOpacity(0.6)
        self.setZValue(10)

    def set_density(self, density: np.ndarray | None, image_size: tuple[int, int] | None) -> None:
        if density is None or image_size is None:
            self.clear()
            return
        w, h = image_size
        # density is per display pixel; one display pixel covers (w / dw) x (h / dh) image pixels.
        per_patch = density * (PATCH_AREA * density.shape[0] * density.shape[1] / (w * h))
        # The top 0.5 % saturate: a few hot pixels must not wash the rest of the map out.
        self.vmax = float(max(np.percentile(per_patch, 99.5), 1e-3)) if per_patch.size else 1.0
        self.setImage(per_patch.astype(np.float32), autoLevels=False, levels=(0.0, self.vmax))
        self.setRect(QRectF(0, 0, w, h))

    def set_colormap(self, name: str) -> None:
        self.colormap = name
        self.setLookupTable(density_lut(name))


class LevelOverlay(pg.ImageItem):
    """One pixel per patch, coloured by the level the model selected there (P1..P5)."""

    def __init__(self):
        super().__init__(axisOrder="row-major")
        self.setOpacity(0.45)
        self.setZValue(11)
        self.grid = QGraphicsPathItem(self)
        pen = QPen(QColor(255, 255, 255, 90))
        pen.setCosmetic(True)
        pen.setWidthF(0.8)
        self.grid.setPen(pen)

    def set_levels(self, level_map: np.ndarray | None, patch_rows=None, patch_cols=None) -> None:
        if level_map is None:
            self.clear()
            self.grid.setPath(QPainterPath())
            return
        self.setImage(LEVEL_RGBA[level_map], autoLevels=False, levels=None)
        h, w = float(patch_rows[-1]), float(patch_cols[-1])
        self.setRect(QRectF(0, 0, w, h))
        # The grid lines are a child of this (scaled) item: draw them in level-map units.
        gh, gw = level_map.shape
        path = QPainterPath()
        for i in range(gh + 1):
            path.moveTo(0, i)
            path.lineTo(gw, i)
        for j in range(gw + 1):
            path.moveTo(j, 0)
            path.lineTo(j, gh)
        self.grid.setPath(path)



class UncertaintyOverlay(pg.ImageItem):
    """One pixel per patch: ``uncertainty.patch_scores`` of the result (unsure people per patch)."""

    COLORMAP = "magma"

    def __init__(self):
        super().__init__(axisOrder="row-major")
        self.vmax = 1.0
        self.setLookupTable(density_lut(self.COLORMAP))
        self.setOpacity(0.6)
        self.setZValue(12)

    def set_scores(self, scores: np.ndarray | None, patch_rows=None, patch_cols=None) -> None:
        if scores is None or scores.size == 0:
            self.clear()
            return
        s = np.nan_to_num(np.asarray(scores, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        self.vmax = float(max(np.percentile(s, 99.5), 1e-3))
        self.setImage(s, autoLevels=False, levels=(0.0, self.vmax))
        self.setRect(QRectF(0, 0, float(patch_cols[-1]), float(patch_rows[-1])))
