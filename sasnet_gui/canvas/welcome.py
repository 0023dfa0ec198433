"""The first-run tour on the empty canvas: what to do next, with buttons that do it.

It covers the canvas while no image is shown (it follows the canvas's own "empty" hint, so
whatever empties the canvas brings it back) and says, in at most two steps, how to start: open
images (drop them or a folder here, or File > Open) and, while no model is registered, get the
released model or add a model file. Once a model exists only the image step remains.
"""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from sasnet_gui.canvas.view import EMPTY_HINT

TITLE = "Count the people in a crowd photo"
OPEN_STEP = ("Open images", "Drop images, a folder or a video anywhere on this window, "
             "or use File\u00a0\u25b8\u00a0Open\u2026\u00a0(Ctrl+O).")
MODEL_STEP = ("Get a model", "Counting needs a model. The authors' released models are free: "
              "SHHA for dense crowds, SHHB for sparse street scenes (156 MB, downloaded once). "
              "Or add a .pth file you have, or drop it here.")
NOTE = "You can open and annotate images without a model."


def _colours(widget: QWidget) -> dict[str, str]:
    pal = widget.palette()
    return {"text": pal.color(QPalette.ColorRole.WindowText).name(),
            "muted": pal.color(QPalette.ColorRole.PlaceholderText).name(),
            "card": pal.color(QPalette.ColorRole.Window).name(),
            "border": pal.color(QPalette.ColorRole.Mid).name(),
            "accent": pal.color(QPalette.ColorRole.Highlight).name(),
            "on_accent": pal.color(QPalette.ColorRole.HighlightedText).name()}


class _Step(QWidget):
    """A numbered step: a round number, a heading, one sentence and its buttons."""

    def __init__(self, number: int, heading: str, text: str, buttons: list[QPushButton], c: dict):
        super().__init__()
        badge = QLabel(str(number))
        badge.setFixedSize(30, 30)
        badge.setAlignment(Qt.AlignmentFlag.AlignCenter)
        badge.setStyleSheet(f"background:{c['accent']}; color:{c['on_accent']}; border-radius:15px;"
                            "font-weight:600; font-size:14px;")
        self.heading = QLabel(heading)
        self.heading.setStyleSheet(f"color:{c['text']}; font-size:16px; font-weight:600;")
        self.text = QLabel(text)
        self.text.setWordWrap(True)
        self.text.setStyleSheet(f"color:{c['muted']}; font-size:13px;")
        row = QHBoxLayout()
        row.setSpacing(8)
        for b in buttons:
            b.setMinimumHeight(30)
            row.addWidget(b)
        row.addStretch(1)
        body = QVBoxLayout()
        body.setSpacing(6)
        body.addWidget(self.heading)
        body.addWidget(self.text)
        body.addSpacing(4)
        body.addLayout(row)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(14)
        lay.addWidget(badge, 0, Qt.AlignmentFlag.AlignTop)
        lay.addLayout(body, 1)


class WelcomeOverlay(QFrame):
    """Covers an empty canvas with the next steps. The window connects the signals to its actions."""

    openImages = Signal()
    openFolder = Signal()
    getReleasedModel = Signal()
    addModelFile = Signal()

    def __init__(self, canvas: QWidget):
        super().__init__(canvas)
        self.setObjectName("welcome")
        self._canvas = canvas
        c = _colours(self)
        self.setStyleSheet(f"#welcome {{ background:{canvas.palette().color(QPalette.ColorRole.Base).name()}; }}"
                           f"#welcomeCard {{ background:{c['card']}; border:1px solid {c['border']};"
                           " border-radius:10px; }")

        self.open_button = QPushButton("Open Images\u2026")
        self.folder_button = QPushButton("Open Folder\u2026")
        self.get_model_button = QPushButton("Get the Released Model\u2026")
        self.get_model_button.setDefault(True)
        self.add_model_button = QPushButton("Add a Model File\u2026")
        self.open_button.clicked.connect(self.openImages)
        self.folder_button.clicked.connect(self.openFolder)
        self.get_model_button.clicked.connect(self.getReleasedModel)
        self.add_model_button.clicked.connect(self.addModelFile)

        self.title = QLabel(TITLE)
        self.title.setStyleSheet(f"color:{c['text']}; font-size:22px; font-weight:600;")
        self.open_step = _Step(1, *OPEN_STEP, [self.open_button, self.folder_button], c)
        self.model_step = _Step(2, *MODEL_STEP, [self.get_model_button, self.add_model_button], c)
        self.note = QLabel(NOTE)
        self.note.setStyleSheet(f"color:{c['muted']}; font-size:12px;")

        card = QFrame()
        card.setObjectName("welcomeCard")
        card.setMaximumWidth(620)
        inner = QVBoxLayout(card)
        inner.setContentsMargins(32, 28, 32, 24)
        inner.setSpacing(20)
        inner.addWidget(self.title)
        inner.addWidget(self.open_step)
        inner.addWidget(self.model_step)
        inner.addWidget(self.note)
        self.card = card

        outer = QVBoxLayout(self)
        outer.addStretch(1)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(card, 100)
        row.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(1)

        # The canvas says whether it is empty through its hint label; follow that and its size.
        self._hint = getattr(canvas, "empty_hint", None)
        self._follower = _Follow(self, self._sync)
        canvas.installEventFilter(self._follower)
        if self._hint is not None:
            self._hint.installEventFilter(self._follower)
        self.set_has_model(False)
        self._sync()

    def set_has_model(self, has_model: bool) -> None:
        """With a model registered only the image step is left."""
        self.model_step.setVisible(not has_model)
        self.note.setVisible(not has_model)

    def canvas_is_empty(self) -> bool:
        """Nothing shown and nothing to say about it: an image that could not be opened keeps the
        canvas empty too, but then the canvas names it instead of greeting a first start."""
        return self._hint is None or (not self._hint.isHidden() and self._hint.text() == EMPTY_HINT)

    def _sync(self) -> None:
        self.setGeometry(self._canvas.rect())
        self.setVisible(self.canvas_is_empty())
        if self.isVisible():
            self.raise_()


class _Follow(QObject):
    """Keeps the overlay the canvas's size and shown exactly while the canvas is empty."""

    _EVENTS = (QEvent.Type.Resize, QEvent.Type.ShowToParent, QEvent.Type.HideToParent)

    def __init__(self, overlay: WelcomeOverlay, sync):
        super().__init__(overlay)
        self._sync = sync  # the overlay's own: fit the canvas, shown while it is empty

    def eventFilter(self, obj, ev) -> bool:  # noqa: N802 - Qt name
        if ev.type() in self._EVENTS:
            self._sync()
        return False
