"""Review mode: visit the image's review cells in order of the model's uncertainty.

A review cell is ``uncertainty.REVIEW_CELL`` x ``REVIEW_CELL`` patches (128 x 128 pixels). The
order is the cells' summed patch scores, highest first (``uncertainty.patch_scores`` of the shown
result, computed once per result: a jump only looks the next unreviewed cell up); without a result
the cells go in reading order.

Fine-tuning takes a reviewed cell as checked truth, so only a person's confirmation marks one:
``confirm_and_next`` (N) marks the outlined cell and shows the next unreviewed one, ``mark_current``
(M) marks it in place, each one undo step. Going ``back`` (Shift+N), opening another image or
moving the view marks nothing. The marks are saved by the document's autosave and survive a
restart.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, QRectF, Qt, Signal
from PySide6.QtGui import QKeySequence

from sasnet_core.engine import uncertainty
from sasnet_core.model.config import PATCH_SIZE


class ReviewNavigator(QObject):
    cellChanged = Signal(object)  # (row, col) of the shown cell, or None
    progressChanged = Signal(int, int)  # reviewed cells, all cells

    def __init__(self, document, canvas, parent=None):
        super().__init__(parent)
        self.document = document
        self.canvas = canvas
        self.current: tuple[int, int] | None = None
        self._last: tuple[int, int] | None = None  # the cell shown before the outline went away
        self._order_for = None  # (result, image shape) the cached order belongs to
        self._order: np.ndarray = np.zeros((0, 2), np.int64)  # (n, 2) cells, most unsure first
        self._rank: dict = {}
        document.loaded.connect(self._on_loaded)
        document.reviewedCellsChanged.connect(self._on_cells_changed)

    # -- geometry and order -----------------------------------------------------------------------
    @property
    def cell_px(self) -> int:
        return self.document.review_cell_px

    def grid(self) -> tuple[int, int]:
        shape = self.canvas.image_shape
        if shape is None:
            return 0, 0
        c = self.cell_px
        return -(-shape[0] // c), -(-shape[1] // c)

    def cell_rect(self, cell) -> QRectF:
        h, w = self.canvas.image_shape[:2]
        c = self.cell_px
        r, k = cell
        x0, y0 = k * c, r * c
        return QRectF(x0, y0, min(x0 + c, w) - x0, min(y0 + c, h) - y0)

    def order(self) -> np.ndarray:
        """(n, 2) all cells, most unsure first; computed once per shown result and image."""
        key = (self.canvas.result, self.canvas.image_shape, self.cell_px)
        old = self._order_for
        if old is None or old[0] is not key[0] or old[1:] != key[1:]:
            self._order_for = key
            self._order = self._compute_order()
            self._rank = {(int(r), int(c)): i for i, (r, c) in enumerate(self._order)}
        return self._order

    def _compute_order(self) -> np.ndarray:
        gh, gw = self.grid()
        cells = np.stack(np.divmod(np.arange(gh * gw), max(gw, 1)), 1).astype(np.int64)
        result = self.canvas.result
        if result is None or gh == 0 or self.cell_px % PATCH_SIZE:
            return cells
        return uncertainty.review_order(result, (gh, gw), self.cell_px // PATCH_SIZE)

    # -- moving -----------------------------------------------------------------------------------
    def confirm_and_next(self) -> tuple[int, int] | None:
        """Mark the outlined cell reviewed (a person confirmed it) and show the next unreviewed
        cell in order of uncertainty, wrapping around; None when every cell is reviewed."""
        if not self._ready():
            return None
        order = self.order()
        if self.current is not None:
            self.document.mark_cells_reviewed([self.current])
        done = self.document.reviewed_cells
        n = len(order)
        start = self._rank.get(self.current, -1)
        for k in range(1, n + 1):
            i = (start + k) % n
            cell = (int(order[i, 0]), int(order[i, 1]))
            if cell not in done:
                self._show(cell)
                return cell
        self._show(None)
        return None

    def back(self) -> tuple[int, int] | None:
        """Show the cell before the outlined one in order of uncertainty, reviewed or not, marking
        nothing: a look back at what was just confirmed. With no outline, the cell last shown
        comes back (else the least unsure cell)."""
        if not self._ready():
            return None
        order = self.order()
        n = len(order)
        if n == 0:
            return None
        if self.current is None and self._last in self._rank:
            cell = self._last
        else:
            i = (self._rank.get(self.current, n) - 1) % n
            cell = (int(order[i, 0]), int(order[i, 1]))
        self._show(cell)
        return cell

    def is_reviewed(self, cell) -> bool:
        return cell is not None and tuple(cell) in self.document.reviewed_cells

    def _ready(self) -> bool:
        return self.document.is_open and self.canvas.image_shape is not None

    def mark_current(self) -> bool:
        """Mark the outlined cell reviewed without moving on; False when no cell is outlined."""
        if self.current is None:
            return False
        self.document.mark_cells_reviewed([self.current])
        return True

    def _show(self, cell) -> None:
        if cell is None and self.current is not None:
            self._last = self.current
        self.current = cell
        if cell is not None:
            # The cell plus a quarter-cell margin fills the view: heads are big enough to click, and
            # the margin shows what lies across the cell's edges.
            # At the image's edge the margin is taken inside the image rather than off it.
            margin = self.cell_px / 4
            h, w = self.canvas.image_shape[:2]
            rect = self.cell_rect(cell).adjusted(-margin, -margin, margin, margin)
            rect.moveLeft(min(max(rect.left(), 0.0), max(w - rect.width(), 0.0)))
            rect.moveTop(min(max(rect.top(), 0.0), max(h - rect.height(), 0.0)))
            self.canvas.vb.setRange(rect, padding=0)
        self.canvas.review_layer.set_current(self.cell_rect(cell) if cell is not None else None)
        self.cellChanged.emit(cell)

    def progress(self) -> tuple[int, int]:
        """(reviewed, all) review cells of the open image; (0, 0) when none is open."""
        if not self.document.is_open:
            return 0, 0
        gh, gw = self.grid()
        done = sum(1 for r, c in self.document.reviewed_cells if r < gh and c < gw)
        return done, gh * gw

    # -- document ---------------------------------------------------------------------------------
    def _on_loaded(self, _path: str) -> None:
        self.current = self._last = None
        self.canvas.review_layer.set_current(None)
        self._on_cells_changed()

    def _on_cells_changed(self) -> None:
        if self.canvas.image_shape is not None and self.document.is_open:
            self.canvas.review_layer.set_reviewed(
                [self.cell_rect(rc) for rc in self.document.reviewed_cells if self._inside(rc)])
        else:
            self.canvas.review_layer.set_reviewed([])
        self.progressChanged.emit(*self.progress())

    def _inside(self, cell) -> bool:
        gh, gw = self.grid()
        return cell[0] < gh and cell[1] < gw

    def refresh(self) -> None:
        """The shown image changed size (it was just decoded): redraw the reviewed cells."""
        self._on_cells_changed()


# -- images -----------------------------------------------------------------------------------------
def needs_review(entry) -> bool:
    """Whether a file-list entry still has review cells no person confirmed: not marked Reviewed
    as a whole, readable, and not every one of its cells checked (unknown counts as unchecked)."""
    if entry is None or entry.error or entry.annotation_error or entry.reviewed:
        return False
    return entry.cells_reviewed is None or entry.cells_reviewed[0] < entry.cells_reviewed[1]


def next_image_to_review(dock, files, current: str | None) -> str | None:
    """The next image after ``current`` in the file list's shown order (wrapping around) that
    ``needs_review``; None when there is none besides the open one."""
    proxy = dock.proxy
    rows = proxy.rowCount()
    here = dock.table.currentIndex().row() if dock.table.currentIndex().isValid() else -1
    for k in range(1, rows + 1):
        path = proxy.data(proxy.index((here + k) % rows, 0), Qt.UserRole)
        if path != current and needs_review(files.entry(path)):
            return path
    return None


def keys_text(confirm, back, mark, next_image, previous_image, next_to_review) -> str:
    """What the review keys do, read from the actions that carry them (the text follows the keys).
    Rich text; a narrow panel wraps it between items, never inside one."""
    def k(action) -> str:
        return f"<b>{action.shortcut().toString(QKeySequence.NativeText)}</b>"

    items = [(k(confirm), "confirm cell, next"), (k(mark), "confirm cell"), (k(back), "back, marks nothing"),
             (f"{k(next_image)} / {k(previous_image)}", "next / previous image"),
             (k(next_to_review), "next image to review")]
    return " \u00b7 ".join(f"{keys} {words}".replace(" ", "&nbsp;") for keys, words in items)
