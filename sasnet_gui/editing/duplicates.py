"""Points on top of each other, pointed out as soon as an edit makes them.

Two points closer than ``DUPLICATE_PX`` mark one head twice (the geometry is the core's:
``sasnet_core.annotations.annotation.duplicate_points``). The watcher looks again after every edit of the
open image (each undo step, never during a drag), keeps the points that would go, and says so when
an edit made more of them; the warning under the counts shows how many there are, with buttons to
select or remove them (one undo step), for as long as there are any. Autosave keeps them as they
are meanwhile: only a person decides which of two points goes, and no edit is ever held back.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from sasnet_core.annotations.annotation import DUPLICATE_PX, duplicate_points


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class DuplicateWatcher(QObject):
    changed = Signal(int)  # points on top of another one in the open image
    appeared = Signal(int)  # an edit made more of them: how many there are now

    def __init__(self, document, parent=None):
        super().__init__(parent)
        self.document = document
        self.indices = np.zeros(0, np.int64)  # the points that would go (see duplicate_points)
        document.loaded.connect(lambda _path: self._update(edited=False))
        document.edited.connect(lambda: self._update(edited=True))

    @property
    def count(self) -> int:
        return len(self.indices)

    def _update(self, edited: bool) -> None:
        before = self.count
        doc = self.document
        self.indices = (duplicate_points(doc.points, DUPLICATE_PX, doc.sources) if doc.is_open
                        else np.zeros(0, np.int64))
        if edited and self.count > before:
            self.appeared.emit(self.count)
        self.changed.emit(self.count)

    def select(self) -> None:
        """Select the points that would go, to look at them or delete them by hand."""
        self.document.set_selection(self.indices)

    def remove(self) -> None:
        """Remove one point of each pair (a model's before a person's): one undo step."""
        if self.count:
            self.document.delete_points(self.indices, text=f"Remove {plural(self.count, 'duplicate point')}")

    def bind_actions(self, select_action, remove_action) -> None:
        """Menu actions that select / remove them, enabled only while there are any."""
        select_action.triggered.connect(self.select)
        remove_action.triggered.connect(self.remove)

        def enable(n: int) -> None:
            select_action.setEnabled(n > 0)
            remove_action.setEnabled(n > 0)

        self.changed.connect(enable)
        enable(self.count)


def warning_text(n: int) -> str:
    return f"\u26a0 {plural(n, 'point')} on top of another (closer than {DUPLICATE_PX:g} px)"


class DuplicateWarning(QFrame):
    """The line under the counts while the open image has duplicate points."""

    def __init__(self, watcher: DuplicateWatcher, parent=None):
        super().__init__(parent)
        self.setObjectName("duplicateWarning")
        self.setStyleSheet("#duplicateWarning { background:#3a3220; border:1px solid #6b5a2a; border-radius:3px; }"
                           "#duplicateWarning QLabel { color:#f0c060; }")
        self.label = QLabel("")
        self.label.setWordWrap(True)
        self.label.setToolTip("Two points this close mark one head twice: they count it twice, and fine-tuning "
                              "learns a double head")
        self.select_button = QPushButton("Select")
        self.select_button.setToolTip("Select the points that would be removed")
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Remove one point of each pair, a model's before a person's (one undo step)")
        self.select_button.clicked.connect(watcher.select)
        self.remove_button.clicked.connect(watcher.remove)
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addStretch(1)
        buttons.addWidget(self.select_button)
        buttons.addWidget(self.remove_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 4, 8, 4)
        lay.setSpacing(2)
        lay.addWidget(self.label)
        lay.addLayout(buttons)
        watcher.changed.connect(self.set_count)
        self.set_count(watcher.count)

    def set_count(self, n: int) -> None:
        self.label.setText(warning_text(n) if n else "")
        self.setVisible(n > 0)
