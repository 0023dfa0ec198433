"""Undo commands: one small QUndoCommand per gesture, never a snapshot of the whole annotation.

Each command stores only what its gesture changed (the inserted or removed points and their
indices, the old and new positions of the moved ones) and calls the document's ``apply_*``
mutators, which emit the change signals. A command's first ``redo`` runs when it is pushed.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtGui import QUndoCommand

from sasnet_core.annotations.annotation import SOURCE_PERSON

# Command ids for QUndoCommand.mergeWith; only the reviewed toggle merges (nothing else should).
_ID_REVIEWED = 1001


class InsertPointsCommand(QUndoCommand):
    """Insert points so that they end up at ``indices`` (sorted) of the new array."""

    def __init__(self, doc, indices, points, sources, text: str = "Add point"):
        super().__init__(text)
        self.doc = doc
        self.indices = np.asarray(indices, np.int64)
        self.points = np.asarray(points, np.float64).reshape(-1, 2)
        self.sources = np.asarray(sources, np.uint8).reshape(-1)

    def redo(self):
        self.doc.apply_insert(self.indices, self.points, self.sources)

    def undo(self):
        self.doc.apply_remove(self.indices)


class RemovePointsCommand(QUndoCommand):
    def __init__(self, doc, indices, text: str = "Delete points"):
        super().__init__(text)
        self.doc = doc
        self.indices = np.unique(np.asarray(indices, np.int64))
        self.points = doc.points[self.indices].copy()
        self.sources = doc.sources[self.indices].copy()

    def redo(self):
        self.doc.apply_remove(self.indices)

    def undo(self):
        self.doc.apply_insert(self.indices, self.points, self.sources)


class MovePointsCommand(QUndoCommand):
    """A finished drag: the points at ``indices`` go from ``old`` to ``new``.

    A point a person has moved is theirs now, so its source becomes SOURCE_PERSON; undo restores
    the old sources too.
    """

    def __init__(self, doc, indices, old, new, old_sources, text: str = "Move points"):
        super().__init__(text)
        self.doc = doc
        self.indices = np.asarray(indices, np.int64)
        self.old = np.asarray(old, np.float64).copy()
        self.new = np.asarray(new, np.float64).copy()
        self.old_sources = np.asarray(old_sources, np.uint8).copy()

    def redo(self):
        self.doc.apply_positions(self.indices, self.new, np.full(len(self.indices), SOURCE_PERSON, np.uint8))

    def undo(self):
        self.doc.apply_positions(self.indices, self.old, self.old_sources)


class ReplacePointsCommand(QUndoCommand):
    """All points at once: start from the model's heads, import a file, clear."""

    def __init__(self, doc, points, sources, text: str):
        super().__init__(text)
        self.doc = doc
        self.new = (np.asarray(points, np.float64).reshape(-1, 2).copy(), np.asarray(sources, np.uint8).copy())
        self.old = (doc.points.copy(), doc.sources.copy())

    def redo(self):
        self.doc.apply_replace(*self.new)

    def undo(self):
        self.doc.apply_replace(*self.old)


class AddRoiCommand(QUndoCommand):
    def __init__(self, doc, polygon, text: str = "Add region of interest"):
        super().__init__(text)
        self.doc = doc
        self.polygon = np.asarray(polygon, np.float64).reshape(-1, 2).copy()
        self.index = len(doc.rois)

    def redo(self):
        self.doc.apply_insert_roi(self.index, self.polygon)

    def undo(self):
        self.doc.apply_remove_roi(self.index)


class RemoveRoiCommand(QUndoCommand):
    def __init__(self, doc, index: int, text: str = "Remove region of interest"):
        super().__init__(text)
        self.doc = doc
        self.index = index
        self.polygon = doc.rois[index].copy()

    def redo(self):
        self.doc.apply_remove_roi(self.index)

    def undo(self):
        self.doc.apply_insert_roi(self.index, self.polygon)


class SetReviewedCommand(QUndoCommand):
    def __init__(self, doc, value: bool):
        super().__init__("Mark as reviewed" if value else "Mark as not reviewed")
        self.doc = doc
        self.old = doc.reviewed
        self.new = bool(value)

    def id(self):
        return _ID_REVIEWED

    def mergeWith(self, other):  # toggling twice in a row is one step back to where it was
        if other.id() != self.id() or other.doc is not self.doc:
            return False
        self.new = other.new
        if self.new == self.old:
            self.setObsolete(True)
        return True

    def redo(self):
        self.doc.apply_reviewed(self.new)

    def undo(self):
        self.doc.apply_reviewed(self.old)


class SetCellsReviewedCommand(QUndoCommand):
    """Review cells checked (or unchecked) in review mode; undo restores exactly those cells."""

    def __init__(self, doc, cells, value: bool):
        n = len(cells)
        verb = "Mark" if value else "Unmark"
        super().__init__(f"{verb} review cell" if n == 1 else f"{verb} {n} review cells")
        self.doc = doc
        self.cells = frozenset(cells)
        self.value = bool(value)

    def redo(self):
        self.doc.apply_cells_reviewed(self.cells, self.value)

    def undo(self):
        self.doc.apply_cells_reviewed(self.cells, not self.value)
