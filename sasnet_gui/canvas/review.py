"""Review cells drawn on the canvas: the reviewed ones dimmed with a green tick edge, the shown one
outlined. Two path items, whatever the number of cells, so a dense image stays quick to redraw."""
from __future__ import annotations

from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsPathItem, QGraphicsRectItem


class ReviewLayer(QGraphicsPathItem):
    def __init__(self):
        super().__init__()
        pen = QPen(QColor(80, 200, 120, 200))
        pen.setCosmetic(True)
        pen.setWidthF(1.0)
        self.setPen(pen)
        self.setBrush(QColor(0, 0, 0, 110))
        self.setZValue(25)  # over the overlays, under the points
        self.current = QGraphicsRectItem(self)
        cpen = QPen(QColor("#ffd400"), 2.5)
        cpen.setCosmetic(True)
        self.current.setPen(cpen)
        self.current.setZValue(1)
        self.current.hide()
        self.reviewed_rects: list[QRectF] = []

    def set_reviewed(self, rects) -> None:
        self.reviewed_rects = list(rects)
        path = QPainterPath()
        for r in self.reviewed_rects:
            path.addRect(r)
        self.setPath(path)

    def set_current(self, rect: QRectF | None) -> None:
        if rect is None:
            self.current.hide()
        else:
            self.current.setRect(rect)
            self.current.show()
