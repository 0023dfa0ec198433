"""The file list dock: a table of the opened images; selecting a row opens it.

Annotation counts of newly added files are read in a worker thread (a folder of UCF_CC_50 files
with thousands of points each would otherwise stall the window when it is dropped).
"""
from __future__ import annotations

from PySide6.QtCore import (
    QEvent,
    QItemSelectionModel,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDockWidget,
    QHeaderView,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from sasnet_core.datasets.ground_truth import truth_of
from sasnet_core.util.errors import SASNetError
from sasnet_gui.files.model import FileListModel


def _scan_annotations(paths):
    """(path, count, reviewed, error, cells, source, from_dataset) of each image: a person's
    annotation, else the ground truth of the data set it belongs to (read, never written)."""
    for p in paths:
        try:
            truth = truth_of(p)
        except SASNetError as exc:
            yield p, None, False, exc.detail, None, "", False
            continue
        ann = truth.annotation
        if truth.dataset_error is not None and truth.dataset.file.exists():
            yield p, None, False, str(truth.dataset_error), None, truth.describe(), False
        elif ann is not None:
            cells = None
            if ann.reviewed_cells and ann.image_size:
                c = ann.review_cell_px
                gh, gw = -(-ann.image_size[1] // c), -(-ann.image_size[0] // c)
                cells = (sum(1 for r, k in ann.reviewed_cells if r < gh and k < gw), gh * gw)
            yield p, ann.count, ann.reviewed, None, cells, truth.describe(), truth.from_dataset
        elif truth.dataset is not None:  # a layout's image whose file is missing: said, not an error
            yield p, None, False, None, None, truth.describe(), False


# Below this many average characters a middle ellipsis leaves "IMG…jpg", the same on every row of
# a data set: rather than that, a narrow list hides the columns it can spare (OPTIONAL_COLUMNS, the
# first first; they come back when it is widened). It opens with room for NAME_WANT_CHARS.
NAME_MIN_CHARS = 20
NAME_WANT_CHARS = 30
# Model first (the counts panel shows the open image's), then reviewed; Unsure last: sorting by it
# is how a person finds the images most worth correcting.
OPTIONAL_COLUMNS = (2, 4, 5)


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
        # often a number, tells files apart); status and people always stay in view.
        self.table.setTextElideMode(Qt.ElideMiddle)
        # One line per row: a name that shows part of its path ("test_data/images/IMG_4.jpg")
        # would otherwise wrap at a "/" and show only the folders in the row's height.
        self.table.setWordWrap(False)
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
        # Status and counts are sized to their contents, which grow as images are counted: which
        # columns fit beside a readable name is decided again (once per burst of changes).
        self._refit = QTimer(self, singleShot=True, interval=0)
        self._refit.timeout.connect(self._fit_columns)
        hh.sectionResized.connect(lambda c, _old, _new: c != 0 and self._refit.start())
        self.table.viewport().installEventFilter(self)
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

    def eventFilter(self, obj, ev) -> bool:  # noqa: N802 - Qt name
        if obj is self.table.viewport() and ev.type() == QEvent.Resize:
            self._refit.start()
        return super().eventFilter(obj, ev)

    def _name_px(self, chars: int) -> int:
        # the item's text margins (the style's focus-frame margin, each side) come on top
        return self.table.fontMetrics().averageCharWidth() * chars + 8

    def _content_px(self, column: int) -> int:
        return max(self.table.horizontalHeader().sectionSizeHint(column), self.table.sizeHintForColumn(column))

    def _fit_columns(self) -> None:
        """Show every column that fits beside a name of NAME_MIN_CHARS; hide the spare ones that
        do not, the least needed first."""
        hh = self.table.horizontalHeader()
        room = self.table.viewport().width() - self._name_px(NAME_MIN_CHARS)
        shown = list(range(1, self.model.columnCount()))
        widths = {c: self._content_px(c) for c in shown}
        for c in OPTIONAL_COLUMNS:
            if sum(widths[k] for k in shown) <= room:
                break
            shown.remove(c)
        for c in widths:
            if hh.isSectionHidden(c) != (c not in shown):
                hh.setSectionHidden(c, c not in shown)

    def preferred_width(self) -> int:
        """The dock's width with every column and room for names of NAME_WANT_CHARS characters."""
        t = self.table
        margins = self.widget().layout().contentsMargins()
        chrome = 2 * t.frameWidth() + t.verticalScrollBar().sizeHint().width() + margins.left() + margins.right()
        return self._name_px(NAME_WANT_CHARS) + sum(map(self._content_px, range(1, self.model.columnCount()))) + chrome

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
        path, count, reviewed, error, cells, source, from_dataset = item
        if error:
            self.model.set_annotation_error(path, error)
            self.model.update(path, source=source)
        else:
            self.model.set_annotation(path, count, reviewed, source, from_dataset)
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
