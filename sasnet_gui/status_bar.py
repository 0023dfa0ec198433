"""The window's status bar: its message belongs to the image on screen and never runs into the
readouts beside it.

``QStatusBar`` draws a temporary message as bare text up to the first permanent widget, cut off
mid-word, and keeps it when another image is opened, so one image's error was read as the next
one's. Here the message is shown in a label that takes the room left of the permanent widgets and
elides itself ("…", the whole text in its tooltip), and a message is cleared when an image other
than the one on screen when it was posted is shown. Messages still go through ``showMessage`` (and
Qt's own status tips), so ``currentMessage()`` and timeouts work as in Qt.
"""
from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QStatusBar, QStyle, QStyleOption

from sasnet_gui.widgets import ElidedLabel


class ImageStatusBar(QStatusBar):
    def __init__(self, current_image: Callable[[], str | None], parent=None):
        super().__init__(parent)
        self._current_image = current_image
        self._posted_for: str | None = None  # the image on screen when the message was posted
        self.message_label = ElidedLabel(elide=Qt.ElideRight)
        self.message_label.setObjectName("statusMessage")
        self.message_label.setMinimumWidth(0)
        # First of the permanent widgets, with all the stretch: it ends where the readouts begin.
        self.addPermanentWidget(self.message_label, 1)
        self.messageChanged.connect(self._on_message)

    def _on_message(self, text: str) -> None:
        if text:
            self._posted_for = self._current_image()
        self.message_label.setText(text)

    def image_shown(self, path: str | None) -> None:
        """Another image is on screen: a message posted for an earlier one goes."""
        if self.currentMessage() and self._posted_for != path:
            self.clearMessage()

    def message_shown(self) -> str:
        """The message as it is drawn (elided to the room it has)."""
        return self.message_label.text()

    def paintEvent(self, ev) -> None:  # noqa: N802 - Qt name
        # QStatusBar's own paintEvent, less the message text: the label draws that.
        painter = QPainter(self)
        opt = QStyleOption()
        opt.initFrom(self)
        self.style().drawPrimitive(QStyle.PrimitiveElement.PE_PanelStatusBar, opt, painter, self)
        painter.end()
