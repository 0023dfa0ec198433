"""What the counts panel says about the image on screen, and what counting one image in tiles says.

The panel shows the model's and the annotated counts with one state word beside the model's:
"counting…" (with tiles done and time left for a large image), "not run", or "error" (the word the
file list shows; the reason goes under the counts). It follows the image on screen: a change to
its row in the file list (a status, an error the scan found) updates it, another row's does not.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from sasnet_core.util.vocab import FileStatus
from sasnet_gui.models.controller import MAX_SIDE_SETTING

COUNTING = "counting\u2026"
NOT_RUN = "not run"
HINT_MS = 30000  # a large image's hint stays while its first tiles are counted


def model_state(entry, model_count) -> str:
    """The word beside the model's count for the file list's ``entry`` (None: not listed)."""
    if entry is not None and entry.status is FileStatus.ERROR:
        return FileStatus.ERROR.value
    if entry is not None and entry.counting_text:  # a large image: tiles done and time left
        return f"{COUNTING} {entry.counting_text}"
    if entry is not None and entry.counting:
        return COUNTING
    return "" if model_count is not None else NOT_RUN


class CountsController(QObject):
    message = Signal(str, int)  # a status-bar line and how long it stays (ms)

    def __init__(self, panel, session, files, document, parent=None):
        super().__init__(parent)
        self.panel, self.session, self.files, self.document = panel, session, files, document
        session.countsChanged.connect(self.update)
        files.dataChanged.connect(self._on_rows_changed)

    def update(self) -> None:
        c = self.session.counts()
        on_screen = self.session.on_screen()
        entry = self.files.entry(on_screen) if on_screen else None
        self.panel.set_counts(c["model"], c["annotated"], c["roi_model"], c["roi_annotated"],
                              model_state(entry, c["model"]), c["reviewed"])
        self.panel.set_problem(entry.problem() if entry is not None else None)
        self.panel.set_source(self.document.source_text())

    def _on_rows_changed(self, top_left, bottom_right) -> None:
        row = self.files.row_of(self.session.on_screen() or "")
        if row >= 0 and top_left.row() <= row <= bottom_right.row():
            self.update()

    def review_progress(self, done: int, total: int) -> None:
        """Review cells confirmed on the image on screen, in the panel and in its file list row."""
        self.panel.set_review_progress(done, total)
        if self.session.current and total:
            self.files.update(self.session.current, cells_reviewed=(done, total))

    def tiles(self, path: str, event) -> None:
        """An image counted in tiles: its row and counts say how far; a very large one gets the
        hint of the setting that makes it faster, once, as its first tile starts."""
        # deferred: torch, which the window does not load before a model (loaded by now)
        from sasnet_core.engine.inference import large_image_hint

        self.files.set_tiles(path, event)
        hint = large_image_hint(event.size, MAX_SIDE_SETTING) if event.done == 0 else None
        if hint:
            self.message.emit(f"{Path(path).name}: {hint}", HINT_MS)
