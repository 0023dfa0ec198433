"""The "Get the released model" dialog: choose SHHA or SHHB, watch the download, cancel it.

The download runs in a worker thread (the window stays responsive); the core verifies the sha256
before anything is registered and writes atomically, so a cancel or a failure leaves nothing
behind. The new model is registered (the default when there was none) and loaded. When the
download cannot run (offline, blocked, a wrong file), the dialog says so in one sentence and shows
the steps to do it by hand, with the folder as a link.
"""
from __future__ import annotations

import html
import logging

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import create_worker

from sasnet_core.util.cancel import Cancelled, CancelToken
from sasnet_core.util.errors import SASNetError
from sasnet_gui.models import acquire

log = logging.getLogger(__name__)
_MB = 1_000_000


class _Relay(QObject):
    """Carries progress from the worker thread to the dialog (a queued signal)."""

    progressed = Signal(object, object)


class GetReleasedDialog(QDialog):
    """Emits ``modelReady(name)`` once the model is registered (and its load has started)."""

    modelReady = Signal(str)

    def __init__(self, controller, parent: QWidget | None = None, key: str = "shha"):
        super().__init__(parent)
        self.setObjectName("getReleasedDialog")
        self.setWindowTitle("Get the released model")
        self.controller = controller
        self._worker = None
        self._token: CancelToken | None = None
        self.last_error: str | None = None

        intro = QLabel("Download a model released by the SASNet authors. It is checked against the "
                       "authors' file (SHA-256) before it is used.")
        intro.setWordWrap(True)
        self.choices = QButtonGroup(self)
        choice_box = QVBoxLayout()
        for i, (k, model) in enumerate(acquire.released_models().items()):
            button = QRadioButton(f"{model.file_name.removesuffix('.pth')}: {model.good_for} "
                                  f"({model.dataset}, MAE {model.mae:g}; {model.size / _MB:.0f} MB)")
            button.setProperty("key", k)
            button.setChecked(k == key)
            self.choices.addButton(button, i)
            choice_box.addWidget(button)

        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.manual_label = QLabel()
        self.manual_label.setObjectName("manualSteps")
        self.manual_label.setWordWrap(True)
        self.manual_label.setTextFormat(Qt.TextFormat.RichText)
        self.manual_label.setOpenExternalLinks(True)
        self.manual_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.manual_label.hide()

        self.download_button = QPushButton("Download")
        self.download_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel")
        self.download_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.download_button)
        buttons.addWidget(self.cancel_button)

        lay = QVBoxLayout(self)
        lay.addWidget(intro)
        lay.addLayout(choice_box)
        lay.addWidget(self.progress)
        lay.addWidget(self.status_label)
        lay.addWidget(self.manual_label)
        lay.addLayout(buttons)
        self.setMinimumWidth(520)

        self._relay = _Relay(self)
        self._relay.progressed.connect(self._on_progress)

    # -- state -----------------------------------------------------------------------------
    def chosen(self) -> str:
        button = self.choices.checkedButton()
        return button.property("key") if button is not None else "shha"

    def is_running(self) -> bool:
        return self._worker is not None

    # -- the download ----------------------------------------------------------------------
    def start(self) -> None:
        if self.is_running():
            return
        key = self.chosen()
        self._token = CancelToken()
        self.last_error = None
        self.manual_label.hide()
        self.progress.setRange(0, 0)  # busy until the size is known
        self.progress.show()
        self.adjustSize()
        self.status_label.setText(f"Downloading {acquire.released_models()[key].file_name}\u2026")
        for b in self.choices.buttons():
            b.setEnabled(False)
        self.download_button.setEnabled(False)
        worker = create_worker(acquire.download_released, key, self._relay.progressed.emit, self._token,
                               _start_thread=False, _ignore_errors=True)
        worker.returned.connect(self._done)
        worker.errored.connect(self._failed)
        worker.finished.connect(self._finished)
        self._worker = worker
        worker.start()

    def cancel(self) -> None:
        """Stop the download at its next chunk; the core removes what it had written."""
        if self._token is not None:
            self._token.cancel()
            self.status_label.setText("Cancelling\u2026")

    def _on_progress(self, done, total) -> None:
        if total:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * min(done / total, 1.0)))
            self.progress.setFormat(f"{done / _MB:.1f} of {total / _MB:.1f} MB")
        else:
            self.progress.setRange(0, 0)
            self.progress.setFormat(f"{done / _MB:.1f} MB")

    def _done(self, entry) -> None:
        self.status_label.setText(f"{html.escape(acquire.identity_text(entry))}: added as "
                                  f"'{html.escape(entry.name)}'.")
        self.controller.registryChanged.emit()
        self.controller.load(entry.name)
        self.modelReady.emit(entry.name)
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        self.progress.hide()
        if isinstance(exc, Cancelled):
            self.status_label.setText("Download cancelled; nothing was kept.")
            return
        if isinstance(exc, SASNetError):
            log.warning("downloading the released model failed: %s", exc)
        else:  # a bug: keep its traceback in the log
            log.error("downloading the released model failed", exc_info=(type(exc), exc, exc.__traceback__))
        self.last_error = _first_sentence(getattr(exc, "detail", None) or str(exc) or type(exc).__name__)
        self.status_label.setText(f"<span style='color:#e05545'>{html.escape(self.last_error)}</span>")
        self.manual_label.setText(acquire.manual_steps_html(self.chosen()))
        self.manual_label.show()
        self.adjustSize()  # room for the wrapped sentences

    def _finished(self) -> None:
        self._worker = None
        self._token = None
        for b in self.choices.buttons():
            b.setEnabled(True)
        self.download_button.setEnabled(True)
        self.download_button.setText("Try Again" if self.last_error else "Download")

    def reject(self) -> None:
        """Cancel closes the dialog; a running download stops and leaves nothing behind."""
        self.cancel()
        super().reject()


def _first_sentence(text: str) -> str:
    """The core's message may go on with the command-line steps; the dialog shows its own."""
    text = " ".join(text.split())
    head, sep, _ = text.partition(". ")
    sentence = head + "." if sep else text
    return sentence[:1].upper() + sentence[1:]
