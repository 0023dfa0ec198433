"""Regions of interest: the saved polygons and the polygon being drawn.

Drawing: with the ROI tool, each click adds a vertex; a double-click, a click on the first vertex,
or Enter closes the polygon (one undo step: "Add region of interest"); Esc or Backspace on an
empty polygon cancels it. The polygon under construction is view state, not document state.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QBrush, QColor, QPainterPath, QPen, QPolygonF
from PySide6.QtWidgets import QGraphicsItemGroup, QGraphicsPathItem

ROI_COLOUR = QColor("#00e5ff")
CLOSE_PX = 10  # clicking this close to the first vertex closes the polygon


def _polygon_path(poly: np.ndarray, closed: bool) -> QPainterPath:
    path = QPainterPath()
    if len(poly) == 0:
        return path
    qpoly = QPolygonF([QPointF(float(x), float(y)) for x, y in poly])
    path.addPolygon(qpoly)
    if closed:
        path.closeSubpath()
    return path


class RoiLayer(QGraphicsItemGroup):
    def __init__(self):
        super().__init__()
        self.setZValue(20)
        self._saved = QGraphicsPathItem(self)
        pen = QPen(ROI_COLOUR, 2)
        pen.setCosmetic(True)
        self._saved.setPen(pen)
        self._saved.setBrush(QBrush(QColor(0, 229, 255, 28)))
        self._draft = QGraphicsPathItem(self)
        dpen = QPen(QColor("#ffffff"), 1.5, Qt.DashLine)
        dpen.setCosmetic(True)
        self._draft.setPen(dpen)
        self.draft: list[tuple[float, float]] = []
        self._hover: tuple[float, float] | None = None

    def set_rois(self, rois) -> None:
        path = QPainterPath()
        path.setFillRule(Qt.OddEvenFill)
        for poly in rois:
            path.addPath(_polygon_path(np.asarray(poly), closed=True))
        self._saved.setPath(path)

    # -- the polygon being drawn ------------------------------------------------------------------
    def add_vertex(self, x: float, y: float) -> None:
        self.draft.append((float(x), float(y)))
        self._redraw()

    def near_first(self, x: float, y: float, pixel: float) -> bool:
        if len(self.draft) < 3:
            return False
        fx, fy = self.draft[0]
        return (fx - x) ** 2 + (fy - y) ** 2 <= (CLOSE_PX * pixel) ** 2

    def hover(self, x: float, y: float) -> None:
        if self.draft:
            self._hover = (x, y)
            self._redraw()

    def take_draft(self) -> np.ndarray:
        poly = np.asarray(self.draft, np.float64).reshape(-1, 2)
        self.cancel()
        return poly

    def cancel(self) -> None:
        self.draft = []
        self._hover = None
        self._draft.setPath(QPainterPath())

    def undo_vertex(self) -> None:
        if self.draft:
            self.draft.pop()
            self._redraw()

    def _redraw(self) -> None:
        pts = list(self.draft) + ([self._hover] if self._hover else [])
        self._draft.setPath(_polygon_path(np.asarray(pts), closed=False))
