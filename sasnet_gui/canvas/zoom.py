"""The zoom readout in the canvas's bottom-left corner ("38 %") with Fit and 1:1 beside it.

The buttons carry the window's View actions (``setDefaultAction``), so the corner, the menu and
the shortcuts are one thing. Hidden while no image is shown.
"""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton

MARGIN = 8  # pixels from the canvas's edges


def zoom_text(scale: float) -> str:
    """Screen pixels per image pixel as a percentage a person reads at a glance."""
    pct = scale * 100.0
    return f"{pct:.1f} %" if pct < 10 else f"{pct:.0f} %"


class ZoomBar(QFrame):
    def __init__(self, canvas, fit_action, actual_action):
        super().__init__(canvas)
        self.canvas = canvas
        self.setObjectName("zoomBar")
        self.setStyleSheet("QFrame#zoomBar { background: rgba(20, 20, 20, 200); border-radius: 4px; }"
                           "QLabel { color: #e6e6e6; padding: 0 4px; }")
        self.readout = QLabel("")
        self.readout.setObjectName("zoomReadout")
        self.readout.setToolTip("Zoom: screen pixels per image pixel")
        self.readout.setMinimumWidth(self.readout.fontMetrics().horizontalAdvance("1600 %") + 8)
        self.readout.setAlignment(Qt.AlignRight | Qt.AlignVCenter)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.setSpacing(2)
        lay.addWidget(self.readout)
        self.buttons = []
        for action, text in ((fit_action, "Fit"), (actual_action, "1:1")):
            action.setIconText(text)  # short on the canvas; the menu keeps the full text
            b = QToolButton()
            b.setDefaultAction(action)
            b.setToolButtonStyle(Qt.ToolButtonTextOnly)
            b.setAutoRaise(True)
            lay.addWidget(b)
            self.buttons.append(b)
        canvas.zoomChanged.connect(self._on_zoom)
        canvas.installEventFilter(self)
        self._on_zoom(canvas.zoom_scale())

    def _on_zoom(self, scale: float) -> None:
        self.readout.setText(zoom_text(scale) if scale > 0 else "")
        self.setVisible(scale > 0)
        if scale > 0:
            self._place()

    def text(self) -> str:
        return self.readout.text()

    def _place(self) -> None:
        self.adjustSize()
        self.move(MARGIN, self.canvas.height() - self.height() - MARGIN)
        self.raise_()

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:  # noqa: N802 - Qt name
        if obj is self.canvas and ev.type() == QEvent.Resize:
            self._place()
        return False
