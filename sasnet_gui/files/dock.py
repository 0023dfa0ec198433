"""The file list dock: a table of the opened images; selecting a row opens it.

Annotation counts of newly added files are read in a worker thread (a folder of UCF_CC_50 files
with thousands of points each would otherwise stall the window when it is dropped).
"""
from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, QSortFilterProxyModel, Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QDockWidget, QHeaderView, QLineEdit, QTableView,
                               QVBoxLayout, QWidget)

from sasnet_gui.files.model import FileListModel


def _scan_annotations(paths):
    from sasnet_core.errors import SASNetError

    from sasnet_core.annotation_store import read_annotation

    for p in paths:
        try:
            ann = read_annotation(p)
        except SASNetError as exc:
            yield p, None, False, exc.detail, None
            continue
        if ann is not None:
            cells = None
            if ann.reviewed_cells and ann.image_size:
                c = ann.review_cell_px
                gh, gw = -(-ann.image_size[1] // c), -(-ann.image_size[0] // c)
                cells = (sum(1 for r, k in ann.reviewed_cells if r < gh and k < gw), gh * gw)
            yield p, ann.count, ann.reviewed, None, cells


class FileListDock(QDockWidget):
    fileActivated = Signal(str)

    def __init__(self, model: FileListModel, parent=None):
        super().__init__("Files", parent)
        self.setObjectName("FilesDock")
        self.model = model
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(model)
        self.proxy.setFilterKeyColumn(0)
        self.proxy.setFilterCaseSensitivity(Qt.CaseInsensitive)
        self.proxy.setSortRole(FileListModel.SORT_ROLE)

        self.filter = QLineEdit(placeholderText="Filter by name")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setAlternatingRowColors(True)
        # The name takes the room that is left and is elided in the middle (the end of a name,
        # often a number, tells files apart); status and counts always stay in view.
        self.table.setTextElideMode(Qt.ElideMiddle)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        hh = self.table.horizontalHeader()
        hh.setStretchLastSection(False)
        hh.setSectionResizeMode(0, QHeaderView.Stretch)
        for c in range(1, model.columnCount()):
            hh.setSectionResizeMode(c, QHeaderView.ResizeToContents)
        # Opening order until a header is clicked; a click sorts by that column (again: reversed).
        # No sort arrow: its room would push the last columns out of a narrow dock.
        hh.setSectionsClickable(True)
        hh.sectionClicked.connect(self.sort_by)
        self._sort: tuple[int, Qt.SortOrder] | None = None
        self._selecting = False
        self.table.selectionModel().currentRowChanged.connect(self._on_current)

        body = QWidget()
        lay = QVBoxLayout(body)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.filter)
        lay.addWidget(self.table)
        self.setWidget(body)
        model.entriesAdded.connect(self._scan)
        self._scans = []

    def _on_current(self, current, _previous) -> None:
        if current.isValid() and not self._selecting:
            self.fileActivated.emit(self.proxy.data(current, Qt.UserRole))

    def select_path(self, path) -> None:
        """Highlight ``path`` without emitting fileActivated again."""
        row = self.model.row_of(path)
        if row < 0:
            return
        index = self.proxy.mapFromSource(self.model.index(row, 0))
        if not index.isValid():
            return
        # Not blockSignals(): the view repaints the old and new rows on selectionChanged, and
        # without it the previous row stays drawn as selected.
        self._selecting = True
        try:
            self.table.selectionModel().setCurrentIndex(
                index, QItemSelectionModel.ClearAndSelect | QItemSelectionModel.Rows)
        finally:
            self._selecting = False
        self.table.scrollTo(index)

    def step(self, delta: int) -> str | None:
        """The path ``delta`` rows from the current one (in the shown order), or None."""
        cur = self.table.currentIndex()
        row = (cur.row() if cur.isValid() else -1) + delta
        if 0 <= row < self.proxy.rowCount():
            return self.proxy.data(self.proxy.index(row, 0), Qt.UserRole)
        return None

    def _scan(self, paths) -> None:
        from superqt.utils import thread_worker

        worker = thread_worker(_scan_annotations, start_thread=False)(list(paths))
        worker.yielded.connect(self._on_scanned)
        worker.finished.connect(lambda w=worker: self._scans.remove(w) if w in self._scans else None)
        self._scans.append(worker)
        worker.start()

    def _on_scanned(self, item) -> None:
        path, count, reviewed, error, cells = item
        if error:
            self.model.set_annotation_error(path, error)
        else:
            self.model.set_annotation(path, count, reviewed)
            if cells is not None:
                self.model.update(path, cells_reviewed=cells)

    def sort_by(self, column: int) -> None:
        """Sort by ``column`` (the model's sort keys put the most unsure images first); the same
        column again reverses the order."""
        order = Qt.AscendingOrder
        if self._sort is not None and self._sort[0] == column and self._sort[1] == Qt.AscendingOrder:
            order = Qt.DescendingOrder
        self._sort = (column, order)
        self.proxy.sort(column, order)
        if self.table.currentIndex().isValid():
            self.table.scrollTo(self.table.currentIndex())

    def scanning(self) -> bool:
        return bool(self._scans)
