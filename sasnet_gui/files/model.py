"""The file list: one row per image with its status, model count, annotated count and review state."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont

from sasnet_core.util.progress import TileProgress
from sasnet_core.util.vocab import FileStatus as Status
from sasnet_gui.files.names import shown_names

_STATUS_COLOURS = {
    Status.NOT_RUN: "#8a8a8a",
    Status.COUNTING: "#d08a00",
    Status.COUNTED: "#2f7fd0",
    Status.ANNOTATED: "#2e9d4f",
    Status.ERROR: "#c8323c",
}


@dataclass
class FileEntry:
    path: str
    model_count: float | None = None
    annotated_count: int | None = None  # None: no annotation file yet
    reviewed: bool = False
    counting: bool = False
    error: str | None = None  # the image could not be read or counted
    annotation_error: str | None = None  # its saved annotation could not be read
    unsure: float | None = None  # uncertainty.image_score of the model's result
    cells_reviewed: tuple[int, int] | None = None  # (checked, all) review cells, once known
    # Where the annotated count comes from ("ground truth: ground-truth/GT_IMG_3.mat", "your
    # annotation"); ``from_dataset``: a data set's points no one has edited yet.
    source: str = ""
    from_dataset: bool = False
    tiles: TileProgress | None = None  # while an image counted in tiles is being counted

    @property
    def counting_text(self) -> str:
        """How far counting this image is, in words ("tile 12/768 \u00b7 3 min 20 s left"); "" when
        it is not being counted in tiles."""
        return self.tiles.text() if self.counting and self.tiles is not None else ""

    @property
    def name(self) -> str:
        return Path(self.path).name

    def problem(self) -> str | None:
        """Why the status is "error", in words for the counts panel and the tooltip."""
        if self.error:
            return self.error
        if self.annotation_error:
            return f"its annotation cannot be read: {self.annotation_error}"
        return None

    @property
    def status(self) -> Status:
        if self.error or self.annotation_error:
            return Status.ERROR
        if self.counting:
            return Status.COUNTING
        if self.annotated_count is not None:
            return Status.ANNOTATED
        if self.model_count is not None:
            return Status.COUNTED
        return Status.NOT_RUN


class FileListModel(QAbstractTableModel):
    COLUMNS = ("File", "Status", "Model", "Annotated", "Reviewed", "Unsure")
    # Short headers keep all columns visible in a narrow dock; the tooltip has the full name.
    HEADERS = ("File", "Status", "Model", "People", "\u2713", "Unsure")
    UNSURE_COLUMN = 5
    SORT_ROLE = Qt.UserRole + 1  # numbers for sorting; the unsure score negated: highest first
    entriesAdded = Signal(list)  # paths

    def __init__(self, parent=None):
        super().__init__(parent)
        self._entries: list[FileEntry] = []
        self._rows: dict[str, int] = {}
        # Paths by file name, and the text each row shows: the name, or for a name more than one
        # row has, the end of the path that tells them apart (the filter matches this text).
        self._by_name: dict[str, list[str]] = {}
        self._shown: dict[str, str] = {}

    # -- queries ---------------------------------------------------------------------------------
    def entries(self) -> list[FileEntry]:
        return list(self._entries)

    def paths(self) -> list[str]:
        return [e.path for e in self._entries]

    def entry(self, path_or_row) -> FileEntry | None:
        if isinstance(path_or_row, int):
            return self._entries[path_or_row] if 0 <= path_or_row < len(self._entries) else None
        row = self._rows.get(str(path_or_row))
        return None if row is None else self._entries[row]

    def row_of(self, path) -> int:
        return self._rows.get(str(path), -1)

    def shown_name(self, path) -> str:
        """The text the list shows for ``path``."""
        return self._shown.get(str(path), Path(path).name)

    def reviewed_paths(self) -> list[str]:
        return [e.path for e in self._entries if e.reviewed]

    # -- changes ---------------------------------------------------------------------------------
    def add_paths(self, paths) -> list[str]:
        """Append new paths (already present ones are ignored); returns the added ones."""
        new = []
        for p in paths:
            p = str(p)
            if p not in self._rows and p not in new:
                new.append(p)
        if new:
            first = len(self._entries)
            self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
            for i, p in enumerate(new):
                self._entries.append(FileEntry(p))
                self._rows[p] = first + i
            renamed = self._name_rows(new)
            self.endInsertRows()
            for row in renamed:  # a listed row whose name a new one repeats: it now shows more
                self.dataChanged.emit(self.index(row, 0), self.index(row, 0))
            self.entriesAdded.emit(new)
        return new

    def clear(self) -> None:
        self.beginResetModel()
        self._entries.clear()
        self._rows.clear()
        self._by_name.clear()
        self._shown.clear()
        self.endResetModel()

    def _name_rows(self, new: list[str]) -> list[int]:
        """Name the new rows and rename the listed rows whose name a new one repeats; returns
        the rows renamed."""
        names = set()
        for p in new:
            name = Path(p).name
            self._by_name.setdefault(name, []).append(p)
            names.add(name)
        renamed = []
        for name in names:
            for p, text in shown_names(self._by_name[name]).items():
                if p in self._shown and self._shown[p] != text:
                    renamed.append(self._rows[p])
                self._shown[p] = text
        return renamed

    def update(self, path, **fields) -> None:
        row = self._rows.get(str(path))
        if row is None:
            return
        e = self._entries[row]
        for k, v in fields.items():
            setattr(e, k, v)
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.COLUMNS) - 1))

    def set_counting(self, path) -> None:
        self.update(path, counting=True, error=None, tiles=None)

    def set_tiles(self, path, progress: TileProgress) -> None:
        """The image being counted in tiles has done ``progress.done`` of them."""
        self.update(path, tiles=progress)

    def set_counted(self, path, count: float) -> None:
        self.update(path, counting=False, model_count=float(count), error=None, tiles=None)

    def set_error(self, path, message: str) -> None:
        self.update(path, counting=False, error=message, tiles=None)

    def set_unsure(self, path, score: float | None) -> None:
        self.update(path, unsure=None if score is None else float(score))

    def set_annotation(self, path, count: int | None, reviewed: bool, source: str | None = None,
                       from_dataset: bool = False) -> None:
        """The annotated count and review state; ``source`` (when given) says where they come
        from, ``from_dataset`` that they are a data set's points, unedited."""
        fields = dict(annotated_count=count, reviewed=bool(reviewed), annotation_error=None,
                      from_dataset=bool(from_dataset))
        if source is not None:
            fields["source"] = source
        self.update(path, **fields)

    def set_annotation_error(self, path, message: str) -> None:
        """The saved annotation cannot be read: the row says so until a new one is saved
        (counting the image does not clear it, unlike an image error)."""
        self.update(path, annotation_error=message)

    def stop_counting(self) -> None:
        """After a cancel: rows still marked counting go back to what they were."""
        for e in self._entries:
            if e.counting:
                self.update(e.path, counting=False, tiles=None)

    # -- Qt model ---------------------------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()):
        return 0 if parent.isValid() else len(self._entries)

    def columnCount(self, parent=QModelIndex()):
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section, orientation, role=Qt.DisplayRole):
        if orientation == Qt.Horizontal and role == Qt.DisplayRole:
            return self.HEADERS[section]
        if orientation == Qt.Horizontal and role == Qt.ToolTipRole:
            return {2: "Model count", 3: "Annotated count (people placed or confirmed; in italics: "
                                         "a data set's ground truth, not edited yet)",
                    4: "Reviewed: fine-tuning learns from this image",
                    5: "Expected error: people the model counted where it could not choose a scale; "
                       "sorts highest first"}.get(section, self.COLUMNS[section])
        return None

    def data(self, index, role=Qt.DisplayRole):
        if not index.isValid():
            return None
        e = self._entries[index.row()]
        col = index.column()
        if role == Qt.DisplayRole:
            if col == 0:
                return self.shown_name(e.path)
            if col == 1:
                if e.counting_text:  # a large image: how far, in the room of the status
                    return f"{e.status.value} {int(100 * e.tiles.fraction)}%"
                return e.status.value
            if col == 2:
                return "" if e.model_count is None else f"{e.model_count:.1f}"
            if col == 3:
                if e.annotation_error:
                    return "?"
                return "" if e.annotated_count is None else str(e.annotated_count)
            if col == 4:
                if e.reviewed:
                    return "\u2713"
                if e.cells_reviewed and e.cells_reviewed[0]:
                    return f"{e.cells_reviewed[0]}/{e.cells_reviewed[1]}"
                return ""
            if col == 5:
                return "" if e.unsure is None else f"{e.unsure:.1f}"
        elif role == self.SORT_ROLE:
            return self._sort_key(e, col)
        elif role == Qt.ToolTipRole:
            tip = f"{e.path}\n{e.error}" if e.error else e.path
            if e.counting_text:
                tip += f"\ncounting: {e.counting_text}"
            if e.annotation_error:
                tip += f"\nannotation cannot be read: {e.annotation_error}"
            if e.cells_reviewed:
                tip += f"\ncells reviewed {e.cells_reviewed[0]} / {e.cells_reviewed[1]}"
            if e.source:
                tip += f"\npoints: {e.source}"
            return tip
        elif role == Qt.FontRole and col == 3 and e.from_dataset:
            font = QFont()  # a data set's points no one has edited yet: told apart at a glance
            font.setItalic(True)
            return font
        elif role == Qt.ForegroundRole and col == 1:
            return QBrush(QColor(_STATUS_COLOURS[e.status]))
        elif role == Qt.TextAlignmentRole and col >= 2:
            return int(Qt.AlignCenter) if col == 4 else int(Qt.AlignRight | Qt.AlignVCenter)
        elif role == Qt.UserRole:
            return e.path
        return None

    def _sort_key(self, e: FileEntry, col: int):
        """What a column sorts by, ascending. Missing values sort last; the unsure score is negated
        so the first click on its header puts the images most worth fixing on top."""
        inf = float("inf")
        if col == 0:  # rows of one name together, told apart by what they show
            return f"{e.name.lower()}\0{self.shown_name(e.path).lower()}"
        if col == 1:
            return e.status.value
        if col == 2:
            return inf if e.model_count is None else e.model_count
        if col == 3:
            return inf if e.annotated_count is None else float(e.annotated_count)
        if col == 4:
            return 0.0 if e.reviewed else 1.0
        return inf if e.unsure is None else -e.unsure
