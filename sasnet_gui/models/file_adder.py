"""Adding a checkpoint file a person dropped on the window (or chose) to the registry.

Reading and hashing a 156 MB file takes seconds, so it runs in a worker thread with a progress
dialog that can cancel it. The file is recognised by its content, exactly as ``sasnet models add``
does (the core's registry), and the name comes from the file name only for the list's sake. Then, when no model is in use, the new one is loaded at once (it is the default if there was none);
otherwise the window offers to use it, or to make it the default and use it.
"""
from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QMessageBox, QProgressDialog, QWidget
from superqt.utils import create_worker

from sasnet_core.util.cancel import Cancelled, CancelToken
from sasnet_core.weights.registry import model_name_from
from sasnet_gui import errors
from sasnet_gui.models import acquire

log = logging.getLogger(__name__)

# What a dropped file must end with to be taken as a model rather than an image or a video.
CHECKPOINT_SUFFIXES = (".pth", ".pt")
_MB = 1_000_000


def is_checkpoint_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in CHECKPOINT_SUFFIXES and not Path(path).is_dir()


def _name_for(path: Path, registry) -> str:
    try:
        taken = {e.name for e in registry.entries()}
    except Exception:  # noqa: BLE001 - a damaged registry: the add itself reports it
        taken = set()
    return model_name_from(Path(path).stem, taken)


class _Relay(QObject):
    progressed = Signal(object, object)


class ModelFileAdder(QObject):
    """Adds files one after another; ``added(entry)`` after each, ``failed(path, message)``."""

    added = Signal(object)
    failed = Signal(str, str)

    def __init__(self, controller, window: QWidget):
        super().__init__(window)
        self.controller = controller
        self._window = window
        self._queue: list[Path] = []
        self._worker = None
        self._token: CancelToken | None = None
        self._progress_dialog: QProgressDialog | None = None
        self.offer_box: QMessageBox | None = None
        self._relay = _Relay(self)
        self._relay.progressed.connect(self._on_progress)

    def is_busy(self) -> bool:
        return self._worker is not None or bool(self._queue)

    def add(self, paths) -> None:
        self._queue.extend(Path(p) for p in paths)
        if self._worker is None:
            self._next()

    def cancel(self) -> None:
        self._queue.clear()
        if self._token is not None:
            self._token.cancel()

    # -- one file --------------------------------------------------------------------------
    def _next(self) -> None:
        if not self._queue:
            return
        path = self._queue.pop(0)
        self._token = CancelToken()
        name = _name_for(path, self.controller.registry)
        dlg = QProgressDialog(f"Checking {path.name}\u2026", "Cancel", 0, 0, self._window)
        dlg.setObjectName("addModelProgress")
        dlg.setProperty("file", path.name)
        dlg.setWindowTitle("Adding a model")
        dlg.setWindowModality(Qt.WindowModality.NonModal)
        dlg.setMinimumDuration(300)  # a small file is done before the dialog would appear
        dlg.setAutoClose(False)
        dlg.setAutoReset(False)
        dlg.canceled.connect(self.cancel)
        self._progress_dialog = dlg
        worker = create_worker(acquire.add_file, self.controller.registry, path, name,
                               self._relay.progressed.emit, self._token,
                               _start_thread=False, _ignore_errors=True)
        worker.returned.connect(self._added)
        worker.errored.connect(lambda exc, p=path: self._failed(p, exc))
        worker.finished.connect(self._finished)
        self._worker = worker
        worker.start()

    def _on_progress(self, done, total) -> None:
        dlg = self._progress_dialog
        if dlg is not None and total:
            dlg.setMaximum(1000)
            dlg.setValue(min(int(1000 * done / total), 1000))
            dlg.setLabelText(f"Checking {dlg.property('file')}: {done / _MB:.0f} of {total / _MB:.0f} MB")

    def _added(self, entry) -> None:
        self.controller.registryChanged.emit()
        what = acquire.identity_text(entry)
        c = self.controller
        if not c.has_model() and not c.is_busy():
            c.load(entry.name)
            self._status(f"Added and loading {entry.name}: {what}.")
        else:
            self._offer(entry, what)
        self.added.emit(entry)

    def _offer(self, entry, what: str) -> None:
        """Ask (without blocking) whether to use the new model, and whether as the default."""
        box = QMessageBox(QMessageBox.Icon.Question, "Model added",
                          f"Added '{entry.name}': {what}.", parent=self._window)
        box.setObjectName("modelAddedBox")
        box.setInformativeText("Use it now?")
        default = box.addButton("Use and Make Default", QMessageBox.ButtonRole.AcceptRole)
        use = box.addButton("Use Now", QMessageBox.ButtonRole.ActionRole)
        box.addButton("Not Now", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(use)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def answered(button) -> None:
            if button is default:
                try:
                    self.controller.registry.set_default(entry.name)
                except Exception as exc:  # noqa: BLE001 - shown, the app keeps running
                    errors.show_error(self._window, exc, what="Cannot set the default model")
                    return
                self.controller.registryChanged.emit()
            if button in (default, use):
                self.controller.load(entry.name)

        box.buttonClicked.connect(answered)
        self.offer_box = box
        box.open()

    def _failed(self, path: Path, exc: BaseException) -> None:
        if isinstance(exc, Cancelled):
            self._status(f"Adding {path.name} was cancelled; nothing was registered.")
            return
        errors.show_error(self._window, exc, what="Could not add the model")
        self.failed.emit(str(path), str(exc))

    def _finished(self) -> None:
        self._worker = None
        self._token = None
        if self._progress_dialog is not None:
            self._progress_dialog.canceled.disconnect(self.cancel)
            self._progress_dialog.close()
            self._progress_dialog.deleteLater()
            self._progress_dialog = None
        self._next()

    def _status(self, text: str) -> None:
        bar = getattr(self._window, "statusBar", None)
        if bar is not None:
            bar().showMessage(text, 10000)
