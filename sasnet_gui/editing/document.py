"""The annotation being edited: points, ROIs, review state, its undo history and its autosave.

Views never change the data themselves: gestures become commands pushed on ``undo_stack``; the
commands call the private mutators below, which emit ``pointsChanged`` / ``roisChanged`` /
``reviewedChanged``. Every change to the stack (push, undo, redo) marks the document dirty; a
single-shot timer saves it ``autosave_ms`` after the first unsaved change (a throttle, not a
debounce, so steady editing still saves at least every ``autosave_ms``). Saving goes through
``save_annotation`` (temp file + fsync + os.replace): a crash never leaves half a file. Which file
that is, and where an existing annotation is read from, the annotation store decides.

Each image keeps its own undo stack while the app runs (all in ``undo_group``; the open image's is
the active one), so Edit > Undo still works after another image was shown in between: the last
``HISTORY_LIMIT`` images opened, while they are in the file list. Each image also keeps its baseline: the annotation as first opened (a saved file, a data set's points, or
nothing). Edits that come back to the baseline leave no file of ours behind: when the baseline
had no file of ours, the file our saves created is removed again, so an image whose points were
all undone is not listed, exported or ranked as "annotated, 0 people".
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QUndoGroup, QUndoStack

from sasnet_core.annotations.annotation import (
    SOURCE_MODEL,
    SOURCE_PERSON,
    Annotation,
    save_annotation,
)
from sasnet_core.annotations.store import annotation_file_for
from sasnet_core.datasets.ground_truth import Truth, truth_of
from sasnet_core.datasets.ground_truth import misfit as ground_truth_misfit
from sasnet_core.io.atomic import file_identity, keep_aside, remove_written_file
from sasnet_core.util.errors import (
    AnnotationVersionError,
    OutputWriteError,
    SASNetError,
)
from sasnet_gui import errors as _errors  # noqa: F401  (applies the PySide6 emit() refcount guard)
from sasnet_gui.editing import commands as cmd

AUTOSAVE_MS = 400
# Images whose undo history is kept, the most recently opened ones: each holds a stack and two
# copies of its annotation, so a long session through a large data set does not grow without end.
HISTORY_LIMIT = 100


@dataclass
class _History:
    """What an image keeps while the app runs, shown or not."""

    stack: QUndoStack
    baseline: Annotation  # as first opened: a reverted edit compares with this
    baseline_annotated: bool  # the baseline was an annotation (ours or a data set's), not a blank
    file_existed: bool  # our annotation file was there when the image was first opened
    written: tuple | None = None  # file_identity of the file our last save wrote
    left: Annotation | None = None  # as it was when another image was opened


class AnnotationDocument(QObject):
    loaded = Signal(str)  # image path ("" when closed)
    pointsChanged = Signal()
    selectionChanged = Signal()
    roisChanged = Signal()
    reviewedChanged = Signal(bool)
    reviewedCellsChanged = Signal()
    saved = Signal(str)  # annotation file path
    saveFailed = Signal(object)  # the exception
    loadFailed = Signal(object)
    misfit = Signal(str, list)  # image path, what of its saved points does not fit it any more
    edited = Signal()  # a command was pushed, undone or redone on the open image
    reverted = Signal(str)  # image path: back at its baseline, and no file of ours left for it
    changedOnDisk = Signal(str)  # image path: its file was written by someone else and is left as it is

    def __init__(self, parent=None, autosave_ms: int = AUTOSAVE_MS):
        super().__init__(parent)
        self.undo_group = QUndoGroup(self)
        self.undo_group.indexChanged.connect(self._on_stack_changed)
        self._closed_stack = QUndoStack(self)  # active while no image is open: nothing to undo
        self.undo_group.addStack(self._closed_stack)
        self._histories: dict[str, _History] = {}
        self._history: _History | None = None
        self._switching = False  # activating another image's stack is not an edit
        self._activate(self._closed_stack)
        self.image_path: str | None = None
        self.file: Path | None = None
        # Where the open image's points came from: the annotation store (a person's), or the
        # ground truth of its data set, which is only ever read (``sasnet_core.datasets.ground_truth``).
        self.truth: Truth | None = None
        self.kept_aside: Path | None = None  # where the last unreadable annotation was copied
        # Why the annotation file on disk must not be written over ("newer": a newer version's;
        # "uncopied": unreadable and no copy of it could be kept), or None.
        self.left_alone: str | None = None
        self._left_alone_said = False
        self._ann = Annotation("", None)
        self.selection = np.zeros(0, np.int64)  # sorted point indices
        self._drag: tuple[np.ndarray, np.ndarray] | None = None  # (indices, start positions)
        self._dirty = False
        self._timer = QTimer(self, singleShot=True, interval=autosave_ms)
        self._timer.timeout.connect(self.save)

    # -- state ----------------------------------------------------------------------------------
    @property
    def points(self) -> np.ndarray:
        return self._ann.points

    @property
    def sources(self) -> np.ndarray:
        return self._ann.sources

    @property
    def rois(self) -> list[np.ndarray]:
        return self._ann.rois

    @property
    def reviewed(self) -> bool:
        return self._ann.reviewed

    @property
    def reviewed_cells(self) -> frozenset:
        """(row, col) of the review cells a person has checked."""
        return frozenset(self._ann.reviewed_cells)

    @property
    def review_cell_px(self) -> int:
        return self._ann.review_cell_px

    @property
    def count(self) -> int:
        return len(self._ann.points)

    @property
    def is_open(self) -> bool:
        return self.image_path is not None

    @property
    def dirty(self) -> bool:
        return self._dirty

    @property
    def undo_stack(self) -> QUndoStack:
        """The open image's undo stack (an empty one while none is open)."""
        return self._stack

    @property
    def baseline(self) -> Annotation | None:
        """A copy of the open image's annotation as it was first opened while the app runs."""
        return self._history.baseline.copy() if self._history is not None else None

    def at_baseline(self) -> bool:
        return self._history is not None and self._ann.same_marks(self._history.baseline)

    @property
    def is_annotated(self) -> bool:
        """Whether the open image has an annotation to list, export or learn from: it opened with
        one, or it has been changed since."""
        return self._history is not None and (self._history.baseline_annotated or not self.at_baseline())

    def annotation(self) -> Annotation:
        """A copy of the current annotation (for export)."""
        return self._ann.copy()

    def count_in_roi(self) -> int | None:
        return self._ann.count_in_roi() if self._ann.rois else None

    def source_text(self) -> str:
        """Where the points on screen come from, for a person: "ground truth: ground-truth/
        GT_IMG_3.mat" until they are edited, then "your correction of ground-truth/GT_IMG_3.mat";
        "your annotation" for an image of no data set; "" when there is nothing."""
        if self.truth is None:
            return ""
        edited = self._dirty or (self.file is not None and self.file.is_file())
        if self.truth.kept is not None or not edited:
            return self.truth.describe()
        return Truth(self.truth.image, self._ann, self.file, self.truth.dataset).describe()

    # -- open / close ---------------------------------------------------------------------------
    def open(self, image_path, image_size: tuple[int, int] | None = None) -> None:
        """Save the current image's work, then load ``image_path``'s annotation (or start empty)."""
        self.flush()
        self._leave()
        image_path = str(Path(image_path).absolute())
        self._dirty = False
        self.file = annotation_file_for(image_path)
        ann = None
        self.kept_aside, self.left_alone, self._left_alone_said = None, None, False
        self.truth = Truth(Path(image_path), None)
        try:
            # A person's annotation, else the ground truth of the image's data set (read only:
            # edits are saved to ``self.file`` in the annotation store, never to the data set).
            self.truth = truth_of(image_path)
            ann = self.truth.annotation
        except AnnotationVersionError as exc:
            # Nothing here may replace it: edits are shown but not saved (``save`` says so).
            self.left_alone = "newer"
            self.loadFailed.emit(exc)
        except SASNetError as exc:
            # Keep the unreadable file for a person to look at; our next save writes a fresh one.
            damaged = Path(exc.path) if exc.path else self.file
            try:
                self.kept_aside = keep_aside(damaged, "unreadable")
            except OSError:  # no copy: the damaged file may be the only trace of someone's work
                self.left_alone = "uncopied"
            self.loadFailed.emit(exc)
        problems: list[str] = []
        annotated = ann is not None
        gt_error = self.truth.dataset_error
        if gt_error is not None and self.truth.dataset.file.exists():
            self.loadFailed.emit(gt_error)  # damaged: said; missing: the source line says so
        if ann is None:
            ann = Annotation(image_path, image_size)
        elif self.truth.from_dataset:
            # A data set's points that do not fit its image are pointed out before anyone builds
            # on them, and kept: its published count stays until a person decides.
            problems = ground_truth_misfit(self.truth, image_size)
            ann.image_size = image_size or ann.image_size
        elif image_size is not None:
            # The image changed on disk since it was annotated (resized, replaced): the points are
            # kept as they are, and the person is told before building on them. Points a person
            # chose to keep off an unchanged image are theirs and not pointed out again.
            if ann.image_size and tuple(ann.image_size) != tuple(image_size):
                problems = ann.misfit(image_size)[0]
            ann.image_size = image_size
        self._ann = ann
        self._take_history(image_path, annotated)
        self.image_path = image_path
        self.selection = np.zeros(0, np.int64)
        self._emit_all()
        self.loaded.emit(image_path)
        if problems:
            self.misfit.emit(image_path, problems)

    def _take_history(self, image_path: str, annotated: bool) -> None:
        """Make ``image_path``'s own undo stack the active one. Its history from an earlier visit
        is kept only when the annotation read now is the one that visit left: then every command
        on the stack still fits the data (a file changed by someone else since, or edits that
        could not be saved, start a new history)."""
        h = self._histories.pop(image_path, None)  # put back last: the most recently opened
        if h is not None and (h.left is None or self.left_alone or not h.left.same_marks(self._ann)):
            self._release(h)
            h = None
        if h is None:
            stack = QUndoStack(self)
            self.undo_group.addStack(stack)
            h = _History(stack, self._ann.copy(), annotated, self.file is not None and self.file.exists())
        self._histories[image_path] = h
        h.left = None
        self._history = h
        self._activate(h.stack)
        # The least recently opened go first; an image opened again after that starts a new history
        # from what is on disk then.
        older = [p for p, o in self._histories.items() if o is not h]
        for path in older[:max(0, len(self._histories) - HISTORY_LIMIT)]:
            self._release(self._histories.pop(path))

    def forget(self, image_paths) -> None:
        """Drop the undo history of images no longer in the file list (the open image keeps its own
        while it is on screen)."""
        for path in image_paths:
            path = str(Path(path).absolute())
            if path != self.image_path and path in self._histories:
                self._release(self._histories.pop(path))

    def _release(self, h: _History) -> None:
        self.undo_group.removeStack(h.stack)
        h.stack.deleteLater()

    def _activate(self, stack: QUndoStack) -> None:
        self._switching = True
        try:
            self._stack = stack
            self.undo_group.setActiveStack(stack)
        finally:
            self._switching = False

    def _leave(self) -> None:
        """The open image's work is saved; keep what it looks like beside its history."""
        if self._history is not None:
            self._history.left = self._ann.copy()
            self._history = None
        self._activate(self._closed_stack)

    def close(self) -> None:
        self.flush()
        self._leave()
        self.image_path = None
        self.file = None
        self.truth = None
        self._ann = Annotation("", None)
        self.selection = np.zeros(0, np.int64)
        self._emit_all()
        self.loaded.emit("")

    def set_image_size(self, size: tuple[int, int]) -> None:
        self._ann.image_size = (int(size[0]), int(size[1]))

    def _emit_all(self):
        self.pointsChanged.emit()
        self.selectionChanged.emit()
        self.roisChanged.emit()
        self.reviewedChanged.emit(self._ann.reviewed)
        self.reviewedCellsChanged.emit()

    # -- saving ---------------------------------------------------------------------------------
    def _on_stack_changed(self, _index: int) -> None:
        if self._switching or self.image_path is None:
            return
        self._dirty = True
        if not self._timer.isActive():
            self._timer.start()
        self.edited.emit()

    def save(self) -> bool:
        """Write now if anything changed. Returns False when the write failed."""
        self._timer.stop()
        if not self._dirty or self.image_path is None or self.file is None:
            return True
        if self.left_alone:
            self._dirty = False
            if not self._left_alone_said:  # said at the first edit, not at every autosave after it
                self._left_alone_said = True
                why = ("written by a newer version of SASNet Studio" if self.left_alone == "newer" else
                       "unreadable, and no copy of it could be kept")
                self.saveFailed.emit(OutputWriteError(
                    f"{why}; it is left as it is and edits of this image are not saved", self.file))
            return False
        h = self._history
        if h is not None and not h.file_existed and self.at_baseline():
            # Back where it started: the file our saves made goes again (only that very file).
            try:
                gone = not self.file.exists() or remove_written_file(self.file, h.written)
            except OSError as exc:
                self.saveFailed.emit(OutputWriteError(f"could not be removed: {exc.strerror or exc}", self.file))
                return False
            h.written = None
            self._dirty = False
            if gone:
                self.reverted.emit(self.image_path)
            else:
                # Someone else wrote the file since our last save: it is theirs now, and the blank
                # (or data set's points) this image started from must not be written over it.
                self.changedOnDisk.emit(self.image_path)
            return True
        try:
            save_annotation(self._ann, self.file)
        except (SASNetError, OSError) as exc:
            self.saveFailed.emit(exc)
            return False
        if h is not None:
            h.written = file_identity(self.file)
        self._dirty = False
        self.saved.emit(str(self.file))
        return True

    flush = save

    # -- gestures (each pushes one command) -------------------------------------------------------
    def add_point(self, x: float, y: float) -> None:
        n = self.count
        self.undo_stack.push(cmd.InsertPointsCommand(self, [n], [[x, y]], [SOURCE_PERSON]))

    def delete_points(self, indices, text: str | None = None) -> None:
        indices = np.unique(np.asarray(indices, np.int64))
        if len(indices):
            if text is None:
                text = "Delete point" if len(indices) == 1 else f"Delete {len(indices)} points"
            self.undo_stack.push(cmd.RemovePointsCommand(self, indices, text))

    def delete_selection(self) -> None:
        self.delete_points(self.selection)

    def replace_points(self, points, sources=None, text: str = "Replace points") -> None:
        points = np.asarray(points, np.float64).reshape(-1, 2)
        if sources is None:
            sources = np.full(len(points), SOURCE_PERSON, np.uint8)
        self.undo_stack.push(cmd.ReplacePointsCommand(self, points, sources, text))

    def import_annotation(self, ann: Annotation, text: str) -> None:
        """Take an imported file's points, and its regions of interest where it has any (they
        change every in-region count): one undo step."""
        self.undo_stack.beginMacro(text)
        self.replace_points(ann.points, ann.sources, text)
        if ann.rois:
            for index in reversed(range(len(self.rois))):
                self.remove_roi(index)
            for polygon in ann.rois:
                self.add_roi(polygon)
        self.undo_stack.endMacro()

    def start_from_model(self, heads) -> None:
        heads = np.asarray(heads, np.float64).reshape(-1, 2)
        self.replace_points(heads, np.full(len(heads), SOURCE_MODEL, np.uint8), "Start from model points")

    def add_roi(self, polygon) -> None:
        if len(polygon) >= 3:
            self.undo_stack.push(cmd.AddRoiCommand(self, polygon))

    def remove_roi(self, index: int) -> None:
        self.undo_stack.push(cmd.RemoveRoiCommand(self, index))

    def set_reviewed(self, value: bool) -> None:
        if bool(value) != self.reviewed:
            self.undo_stack.push(cmd.SetReviewedCommand(self, value))

    def mark_cells_reviewed(self, cells, value: bool = True) -> None:
        """Mark review cells (row, col) checked (or not); one undo step, nothing if unchanged."""
        cells = {(int(r), int(c)) for r, c in cells}
        changed = cells - self._ann.reviewed_cells if value else cells & self._ann.reviewed_cells
        if changed:
            self.undo_stack.push(cmd.SetCellsReviewedCommand(self, changed, value))

    # A drag is previewed live (no command) and becomes one command when the mouse is released.
    def begin_move(self, indices) -> None:
        indices = np.asarray(indices, np.int64)
        self._drag = (indices, self.points[indices].copy(), self.sources[indices].copy())

    def preview_move(self, dx: float, dy: float) -> None:
        if self._drag is None:
            return
        indices, start, _ = self._drag
        self._ann.points[indices] = start + (dx, dy)
        self.pointsChanged.emit()

    def end_move(self) -> None:
        if self._drag is None:
            return
        indices, start, sources = self._drag
        self._drag = None
        new = self.points[indices].copy()
        if np.array_equal(new, start):
            return
        text = "Move point" if len(indices) == 1 else f"Move {len(indices)} points"
        self.undo_stack.push(cmd.MovePointsCommand(self, indices, start, new, sources, text))

    def cancel_move(self) -> None:
        if self._drag is not None:
            indices, start, _ = self._drag
            self._drag = None
            self._ann.points[indices] = start
            self.pointsChanged.emit()

    # -- selection (not undoable, as in every editor) -------------------------------------------
    def set_selection(self, indices) -> None:
        sel = np.unique(np.asarray(indices, np.int64))
        sel = sel[(sel >= 0) & (sel < self.count)]
        if not np.array_equal(sel, self.selection):
            self.selection = sel
            self.selectionChanged.emit()

    def select_in_rect(self, x0, y0, x1, y1, add: bool = False) -> None:
        xa, xb = sorted((x0, x1))
        ya, yb = sorted((y0, y1))
        p = self.points
        inside = np.nonzero((p[:, 0] >= xa) & (p[:, 0] <= xb) & (p[:, 1] >= ya) & (p[:, 1] <= yb))[0]
        self.set_selection(np.concatenate([self.selection, inside]) if add else inside)

    def select_all(self) -> None:
        self.set_selection(np.arange(self.count))

    # -- mutators called by commands --------------------------------------------------------------
    # The effects of the undo commands (``commands``): each changes the annotation and signals it,
    # without touching the undo stack. An edit goes through the methods above, which push a
    # command; calling these directly makes a change that Undo cannot take back.
    def apply_insert(self, indices, points, sources) -> None:
        n = self.count + len(indices)
        mask = np.zeros(n, bool)
        mask[indices] = True
        new_pts = np.empty((n, 2), np.float64)
        new_src = np.empty(n, np.uint8)
        new_pts[mask], new_src[mask] = points, sources
        new_pts[~mask], new_src[~mask] = self._ann.points, self._ann.sources
        self._ann.points, self._ann.sources = new_pts, new_src
        self._clear_selection()
        self.pointsChanged.emit()

    def apply_remove(self, indices) -> None:
        keep = np.ones(self.count, bool)
        keep[indices] = False
        self._ann.points = self._ann.points[keep]
        self._ann.sources = self._ann.sources[keep]
        self._clear_selection()
        self.pointsChanged.emit()

    def apply_positions(self, indices, positions, sources) -> None:
        self._ann.points[indices] = positions
        self._ann.sources[indices] = sources
        self.pointsChanged.emit()

    def apply_replace(self, points, sources) -> None:
        self._ann.points, self._ann.sources = points.copy(), sources.copy()
        self._clear_selection()
        self.pointsChanged.emit()

    def apply_insert_roi(self, index, polygon) -> None:
        self._ann.rois.insert(index, polygon.copy())
        self.roisChanged.emit()

    def apply_remove_roi(self, index) -> None:
        del self._ann.rois[index]
        self.roisChanged.emit()

    def apply_reviewed(self, value: bool) -> None:
        self._ann.reviewed = bool(value)
        self.reviewedChanged.emit(self._ann.reviewed)

    def apply_cells_reviewed(self, cells, value: bool) -> None:
        if value:
            self._ann.reviewed_cells |= set(cells)
        else:
            self._ann.reviewed_cells -= set(cells)
        self.reviewedCellsChanged.emit()

    def _clear_selection(self) -> None:
        if len(self.selection):
            self.selection = np.zeros(0, np.int64)
            self.selectionChanged.emit()
