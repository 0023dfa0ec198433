"""Head points drawn on the image, coloured by the level of their patch (the paper's Figure 1).

Why not a plain ``ScatterPlotItem``: with 5,000 points, ``setData`` re-styles every spot (about
20 ms with per-point brushes here) and ``pointsAt`` builds spot objects (about 9 ms), which alone
breaks the 16 ms budget for one edit. This item keeps the points as a numpy array and paints
them the way ScatterPlotItem does internally (one pre-rendered symbol per style, blitted with
``drawPixmapFragments``), so a change costs nothing until the next paint (~4 ms for 5,000).
Hit testing is vectorised numpy in screen pixels; a click that hits nothing is ``ev.ignore()``d
so it falls through to the image item underneath, which adds a point.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt.internals import PrimitiveArray
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QPainter

from sasnet_core.annotations.annotation import SOURCE_MODEL
from sasnet_core.annotations.display import marker_size_for
from sasnet_gui.canvas.colors import LEVEL_COLOURS, SELECTED_COLOUR, UNKNOWN_COLOUR
from sasnet_gui.canvas.markers import (
    MODEL_SHARE,
    MarkerStyle,
    render_selection,
    render_symbol,
)

HIT_PX = 7  # a click this close (screen pixels) to a point's centre hits it
# The automatic marker size follows the head spacing, but is worked out again only when the number
# of points changed by this share: a marker that changed size at every click would be unsettling.
RESIZE_SHARE = 0.2


class PointsItem(pg.GraphicsObject):
    """Points in image coordinates; ``levels`` (0 = unknown, 1..5) and ``sources`` pick the style."""

    def __init__(self, canvas=None):
        super().__init__()
        self.canvas = canvas  # the CanvasView: gestures go to its document and tool
        self.points = np.zeros((0, 2), np.float64)
        self.levels = np.zeros(0, np.uint8)
        self.sources = np.zeros(0, np.uint8)
        self.selection = np.zeros(0, np.int64)
        self._bounds = QRectF()
        self._frag = PrimitiveArray(QPainter.PixmapFragment, 10)
        self.style = MarkerStyle()
        self.auto_image_px: float | None = None  # the automatic diameter for these points (image px)
        self._auto_for_n = -1  # how many points that automatic size was worked out for
        self._symbols: dict = {}  # screen diameter -> (12 styled pixmaps, selection ring)
        self._drag = None
        self.setAcceptHoverEvents(False)

    # -- data -------------------------------------------------------------------------------------
    def set_points(self, points, levels=None, sources=None) -> None:
        self.points = np.asarray(points, np.float64).reshape(-1, 2)
        n = len(self.points)
        self.levels = np.zeros(n, np.uint8) if levels is None else np.asarray(levels, np.uint8)
        self.sources = np.zeros(n, np.uint8) if sources is None else np.asarray(sources, np.uint8)
        last = self._auto_for_n
        if last < 2 or n < 2 or abs(n - last) > RESIZE_SHARE * last:
            self.auto_image_px = marker_size_for(self.points)
            self._auto_for_n = n
        self._update_bounds()

    def new_image(self) -> None:
        """Another image: its points set the automatic size afresh."""
        self._auto_for_n = -1

    def set_style(self, style: MarkerStyle) -> None:
        if style.shape != self.style.shape:
            self._symbols.clear()
        self.style = style
        self.update()

    def screen_diameter(self, scale: float | None = None) -> float:
        """Diameter of a person's marker on screen, at ``scale`` screen pixels per image pixel
        (the view's scale when not given)."""
        if scale is None:
            scale = 1.0 / self.pixelLength_xy()[0]
        return self.style.screen_diameter(self.auto_image_px, scale)

    def _symbols_for(self, diameter: float):
        key = int(round(diameter))
        if key not in self._symbols:
            # style index = level (0..5) * 2 + source (person 0 / model 1)
            pixmaps = []
            for colour in (UNKNOWN_COLOUR,) + LEVEL_COLOURS:
                pixmaps.append(render_symbol(self.style.shape, colour, "#ffffff", key))  # person: white rim
                pixmaps.append(render_symbol(self.style.shape, colour, "#202020", max(2.0, key * MODEL_SHARE)))
            if len(self._symbols) > 64:  # zooming through many sizes: keep the cache small
                self._symbols.clear()
            self._symbols[key] = (pixmaps, render_selection(SELECTED_COLOUR, key))
        return self._symbols[key]

    def set_selection(self, indices) -> None:
        self.selection = np.asarray(indices, np.int64)
        self.update()

    def set_image_rect(self, rect: QRectF) -> None:
        self._image_rect = QRectF(rect)
        self._update_bounds()

    def _update_bounds(self) -> None:
        rect = QRectF(getattr(self, "_image_rect", QRectF()))
        if len(self.points):
            lo, hi = self.points.min(0), self.points.max(0)
            rect = rect.united(QRectF(lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]))
        pad = 0.05 * max(rect.width(), rect.height(), 10.0)
        rect = rect.adjusted(-pad, -pad, pad, pad)
        if rect != self._bounds:
            self.prepareGeometryChange()
            self._bounds = rect
        self.update()

    def boundingRect(self) -> QRectF:
        return QRectF(self._bounds)

    # -- painting ---------------------------------------------------------------------------------
    def paint(self, painter: QPainter, *args) -> None:
        n = len(self.points)
        if n == 0:
            return
        tr = painter.transform()
        painter.resetTransform()
        x = self.points[:, 0] * tr.m11() + self.points[:, 1] * tr.m21() + tr.m31()
        y = self.points[:, 0] * tr.m12() + self.points[:, 1] * tr.m22() + tr.m32()
        style = self.levels.astype(np.intp) * 2 + (self.sources == SOURCE_MODEL)
        scale = float(np.hypot(tr.m11(), tr.m12()))
        diameter = self.screen_diameter(scale)
        pixmaps, selected_pixmap = self._symbols_for(diameter)
        # Only what is on screen (plus a margin) is blitted.
        vis = painter.viewport() if painter.device() is not None else None
        if vis is not None:
            m = diameter + 6
            on = (x > vis.left() - m) & (x < vis.right() + m) & (y > vis.top() - m) & (y < vis.bottom() + m)
        else:
            on = np.ones(n, bool)
        for s in np.unique(style[on]):
            sel = on & (style == s)
            self._blit(painter, x[sel], y[sel], pixmaps[s])
        if len(self.selection):
            idx = self.selection[self.selection < n]
            self._blit(painter, x[idx], y[idx], selected_pixmap)
        painter.setTransform(tr)

    def _blit(self, painter, x, y, pixmap) -> None:
        k = len(x)
        if k == 0:
            return
        w, h = pixmap.width(), pixmap.height()
        self._frag.resize(k)
        f = self._frag.ndarray()
        f[:, 0], f[:, 1] = x, y  # centre on screen
        f[:, 2], f[:, 3], f[:, 4], f[:, 5] = 0, 0, w, h  # source rect
        f[:, 6], f[:, 7], f[:, 8], f[:, 9] = 1, 1, 0, 1  # scale x, y, rotation, opacity
        painter.drawPixmapFragments(*self._frag.drawargs(), pixmap)

    # -- hit testing ------------------------------------------------------------------------------
    def pointsAt(self, pos: QPointF, radius_px: float = HIT_PX) -> np.ndarray:
        """Indices of points within ``radius_px`` screen pixels of ``pos``, nearest first."""
        if len(self.points) == 0:
            return np.zeros(0, np.int64)
        px = self.pixelLength_xy()
        d2 = ((self.points[:, 0] - pos.x()) / px[0]) ** 2 + ((self.points[:, 1] - pos.y()) / px[1]) ** 2
        hits = np.nonzero(d2 <= radius_px**2)[0]
        return hits[np.argsort(d2[hits], kind="stable")]

    def pixelLength_xy(self) -> tuple[float, float]:
        """Size of one screen pixel in item units, along x and y."""
        vx, vy = self.pixelVectors()
        if vx is None:
            return 1.0, 1.0
        return max(abs(vx.x()), 1e-9), max(abs(vy.y()), 1e-9)

    # -- gestures ---------------------------------------------------------------------------------
    def _editing(self) -> bool:
        return self.canvas is not None and self.canvas.tool == "edit" and self.canvas.document.is_open

    def mouseClickEvent(self, ev) -> None:
        if not self._editing() or ev.button() not in (Qt.LeftButton, Qt.RightButton):
            ev.ignore()
            return
        hits = self.pointsAt(ev.pos())
        if len(hits) == 0:
            ev.ignore()  # empty space: the image item below adds a point
            return
        ev.accept()
        doc = self.canvas.document
        i = int(hits[0])
        if ev.button() == Qt.RightButton:
            doc.delete_points([i])  # right-click a head removes it: one gesture, one undo step
        elif ev.modifiers() & (Qt.ControlModifier | Qt.ShiftModifier):
            sel = set(doc.selection.tolist())
            sel.symmetric_difference_update({i})
            doc.set_selection(sorted(sel))
        else:
            doc.set_selection([i])

    def mouseDragEvent(self, ev) -> None:
        if ev.button() != Qt.LeftButton or not self._editing():
            ev.ignore()
            return
        doc = self.canvas.document
        if ev.isStart():
            hits = self.pointsAt(ev.buttonDownPos())
            if len(hits) == 0 or ev.modifiers() & Qt.ShiftModifier:
                ev.ignore()  # empty space (or Shift): box selection / panning below
                return
            i = int(hits[0])
            if i not in set(doc.selection.tolist()):
                doc.set_selection([i])
            doc.begin_move(doc.selection)
            self._drag = ev.buttonDownPos()
        if self._drag is None:
            ev.ignore()
            return
        ev.accept()
        d = ev.pos() - self._drag
        doc.preview_move(d.x(), d.y())
        if ev.isFinish():
            self._drag = None
            doc.end_move()
