"""The image being worked on: load its pixels off the GUI thread, open its annotation, attach the
model's result when it arrives, and keep the counts the window shows up to date.

Glue between the document, the canvas, the file list and the counting queue, so the main window
only composes. Only the shown image's pixels are kept; results are kept per file (small arrays).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from sasnet_core.annotations.annotation import polygon_mask
from sasnet_core.annotations.store import read_annotation
from sasnet_core.engine import uncertainty
from sasnet_core.io.imageio import read_image
from sasnet_core.util.errors import SASNetError


def _read(path: str):
    return read_image(path)


class ImageSession(QObject):
    imageShown = Signal(str)
    imageFailed = Signal(str, object)  # path, exception
    countsChanged = Signal()

    def __init__(self, document, canvas, files, counter, parent=None):
        super().__init__(parent)
        self.document = document
        self.canvas = canvas
        self.files = files
        self.counter = counter
        self.results: dict = {}
        self.current: str | None = None
        self.failed: str | None = None  # the image asked for last, when it could not be opened
        self._generation = 0
        self._workers = []
        self.auto_count = True
        counter.started.connect(files.set_counting)
        counter.counted.connect(self._on_counted)
        counter.failed.connect(self._on_failed)
        counter.idle.connect(files.stop_counting)
        document.pointsChanged.connect(self.countsChanged)
        document.roisChanged.connect(self.countsChanged)
        document.reviewedChanged.connect(self.countsChanged)
        document.saved.connect(self._on_saved)
        document.reverted.connect(self._on_reverted)
        document.changedOnDisk.connect(self._on_changed_on_disk)
        # An image that leaves the list takes its undo history along.
        files.modelAboutToBeReset.connect(lambda: document.forget(files.paths()))
        files.rowsAboutToBeRemoved.connect(
            lambda _parent, first, last: document.forget(files.paths()[first:last + 1]))

    # -- showing an image -------------------------------------------------------------------------
    def show(self, path) -> None:
        """Start loading ``path``; ``imageShown`` fires once it is on the canvas."""
        from superqt.utils import thread_worker

        path = str(Path(path).absolute())
        self.document.flush()  # the previous image's last edits reach the disk now
        self._generation += 1
        gen = self._generation
        worker = thread_worker(_read, start_thread=False, ignore_errors=True)(path)
        worker.returned.connect(lambda rgb, p=path, g=gen: self._on_loaded(p, g, rgb))
        worker.errored.connect(lambda exc, p=path, g=gen: self._on_load_failed(p, g, exc))
        worker.finished.connect(lambda w=worker: self._workers.remove(w) if w in self._workers else None)
        self._workers.append(worker)
        worker.start()

    def _on_loaded(self, path: str, gen: int, rgb: np.ndarray) -> None:
        if gen != self._generation:
            return  # a newer request won
        self.current = path
        self.failed = None
        h, w = rgb.shape[:2]
        self.canvas.set_image(rgb)
        self.document.open(path, (w, h))
        self.canvas.set_result(self.results.get(path))
        self.countsChanged.emit()
        self.imageShown.emit(path)
        if path not in self.results and self.auto_count:
            self.counter.enqueue([path], front=True)

    def _on_load_failed(self, path: str, gen: int, exc) -> None:
        self.files.set_error(path, getattr(exc, "detail", str(exc)))
        if gen == self._generation:
            self.failed = path
            self.imageFailed.emit(path, exc)

    def close_image(self, message: str | None = None) -> None:
        """Show no image; ``message`` says on the canvas why (an image that could not be opened)."""
        self._generation += 1
        self.document.close()
        self.current = None
        self.canvas.set_image(None, message)
        self.countsChanged.emit()

    def on_screen(self) -> str | None:
        """The image the window is about: the one shown, or the one that could not be opened."""
        return self.current or self.failed

    def busy(self) -> bool:
        return bool(self._workers)

    # -- model results ----------------------------------------------------------------------------
    def _on_counted(self, path: str, result) -> None:
        self.results[path] = result
        self.files.set_counted(path, result.count)
        self.files.set_unsure(path, uncertainty.image_score(result))
        if path == self.current:
            self.canvas.set_result(result)
            self.countsChanged.emit()

    def _on_failed(self, path: str, message: str) -> None:
        self.files.set_error(path, message)
        if path == self.current:  # the counts panel says why there is no count
            self.countsChanged.emit()

    def forget_results(self) -> None:
        """A new model: old counts no longer describe it."""
        self.results.clear()
        for e in self.files.entries():
            self.files.update(e.path, model_count=None, unsure=None)
        self.canvas.set_result(None)
        self.countsChanged.emit()

    def current_result(self):
        return self.results.get(self.current) if self.current else None

    def start_from_model(self) -> bool:
        r = self.current_result()
        if r is None:
            return False
        self.document.start_from_model(r.heads)
        return True

    # -- counts -----------------------------------------------------------------------------------
    def counts(self) -> dict:
        doc, r = self.document, self.current_result()
        out = {"model": r.count if r is not None else None,
               "annotated": doc.count if doc.is_open else None,
               "roi_model": None, "roi_annotated": None, "reviewed": doc.reviewed}
        if doc.is_open and doc.rois:
            out["roi_annotated"] = doc.count_in_roi()
            if r is not None:
                def mask(shape, sx, sy):
                    m = np.zeros(shape, bool)
                    for poly in doc.rois:
                        m |= polygon_mask(poly * (sx, sy), shape)
                    return m

                out["roi_model"] = r.count_in_mask(mask)
        return out

    def _on_saved(self, _file: str) -> None:
        if self.document.image_path:
            self.files.set_annotation(self.document.image_path, self.document.count, self.document.reviewed,
                                      self.document.source_text())
            self.countsChanged.emit()  # the counts panel's source line: now the person's annotation

    def _on_reverted(self, path: str) -> None:
        """Edits came back to where the image started and our file of it is gone: the list shows
        it as it was (not annotated, or its data set's points), and nothing exports or ranks it."""
        doc = self.document
        base = doc.baseline
        if base is None or path != doc.image_path:
            return
        count = base.count if doc.is_annotated else None
        self.files.set_annotation(path, count, base.reviewed, doc.source_text(),
                                  from_dataset=bool(doc.truth is not None and doc.truth.from_dataset))
        self.countsChanged.emit()

    def _on_changed_on_disk(self, path: str) -> None:
        """Another program wrote the image's annotation file since our last save, and it is left as
        it is: the list shows what that file holds, not what our last save held."""
        try:
            ann = read_annotation(path)
        except SASNetError as exc:
            self.files.set_annotation_error(path, getattr(exc, "detail", str(exc)))
            return
        if ann is not None:
            self.files.set_annotation(path, ann.count, ann.reviewed)
